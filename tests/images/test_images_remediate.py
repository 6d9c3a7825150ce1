"""Image remediation on a real scan: real PyPA advisories, store, risk actions, Dockerfile diff."""

from __future__ import annotations

from pathlib import Path

from tests.images import imagekit

from patchwarden.inventory.oci import ImageInventory, scan_image
from patchwarden.prioritize import Action, plan_actions, score_findings
from patchwarden.remediate_image import BaseVerdict, patch_dockerfile, plan_image_remediation
from patchwarden.service import import_feeds, scan
from patchwarden.store import FindingFilter, Store

OSV = imagekit.DATA / "images" / "osv"

DOCKERFILE = """\
FROM docker.io/library/debian:12
RUN apt-get update && apt-get install -y curl python3
COPY requirements.txt /app/
RUN pip install -r /app/requirements.txt
USER app
CMD ["python3", "-m", "app"]
"""


def _actions(tmp_path: Path, inv: ImageInventory) -> list[Action]:
    store = Store.open(f"sqlite:///{tmp_path / 'pw.db'}")
    try:
        import_feeds(store, [OSV])
        scan(store, [inv.inventory])
        rows = store.findings(FindingFilter(assets=(inv.inventory.asset.id,)))
        return plan_actions(score_findings(store, rows))
    finally:
        store.close()


def _candidate(tmp_path: Path, jinja_version: str) -> ImageInventory:
    meta = (imagekit.SITE / "Jinja2-2.10.dist-info" / "METADATA").read_text()
    meta = meta.replace("Version: 2.10\n", f"Version: {jinja_version}\n", 1)
    site = imagekit.PY_SITE
    layer = imagekit.layer_tar(
        [imagekit.file(f"{site}/Jinja2-{jinja_version}.dist-info/METADATA", meta)]
    )
    image = imagekit.Image(layers=[layer], tag=f"registry.example/base:{jinja_version}")
    layout, _ = imagekit.write_oci_layout(image, tmp_path / f"base-{jinja_version}")
    return scan_image(layout)


def test_remediation_of_a_real_scan(tmp_path: Path) -> None:
    inv = scan_image(imagekit.write_docker_archive(imagekit.app_image(), tmp_path / "a.tar"))
    actions = _actions(tmp_path, inv)
    assert [(a.package, a.installed_version, a.target_version) for a in actions] == [
        ("jinja2", "2.10", "2.11.3")
    ]
    plan = plan_image_remediation(inv, actions, dockerfile=DOCKERFILE)
    (up,) = plan.upgrades
    assert up.layers == (1,)
    assert up.packages[0].path.endswith("/Jinja2-2.10.dist-info")
    assert up.base is None
    assert plan.instructions == (
        "RUN /usr/local/bin/python3 -m pip install --no-cache-dir jinja2==2.11.3",
    )
    assert plan.dockerfile_diff is not None
    assert "+RUN /usr/local/bin/python3 -m pip install --no-cache-dir jinja2==2.11.3\n" in (
        plan.dockerfile_diff
    )
    # The pin goes after the application's install, before CMD.
    patched = [ln[1:] for ln in plan.dockerfile_diff.splitlines() if ln[:1] in " +"][2:]
    assert (
        patched.index("RUN pip install -r /app/requirements.txt")
        < patched.index(plan.instructions[0])
        < patched.index('CMD ["python3", "-m", "app"]')
    )
    assert plan.patch_layer.startswith("FROM registry.example/app:1.0\n")


def test_candidate_base_image(tmp_path: Path) -> None:
    inv = scan_image(imagekit.write_docker_archive(imagekit.app_image(), tmp_path / "a.tar"))
    actions = _actions(tmp_path, inv)
    fixed = plan_image_remediation(
        inv, actions, candidate_base=_candidate(tmp_path, "2.11.3"), dockerfile=DOCKERFILE
    )
    assert [u.base for u in fixed.upgrades] == [BaseVerdict.FIXED_BY_BASE]
    assert fixed.upgrades[0].base_version == "2.11.3"
    assert fixed.instructions == ()
    assert fixed.new_base is not None
    assert fixed.new_base.startswith("registry.example/base:2.11.3@sha256:")
    assert f"+FROM {fixed.new_base}\n" in (fixed.dockerfile_diff or "")
    old = plan_image_remediation(inv, actions, candidate_base=_candidate(tmp_path, "2.10.1"))
    assert [u.base for u in old.upgrades] == [BaseVerdict.NOT_FIXED_BY_BASE]
    assert old.new_base is None
    assert len(old.instructions) == 1


def test_dockerfile_user_and_os_upgrades() -> None:
    diff = patch_dockerfile(
        "FROM a AS build\nRUN make\nFROM debian:12\nUSER app\nCMD x\n",
        ["RUN apt-get install -y --only-upgrade libssl3", "RUN pip install x==1"],
        user="app",
    )
    patched = [ln[1:] for ln in diff.splitlines()[3:] if ln[:1] in " +"]
    assert patched == [
        "FROM a AS build",
        "RUN make",
        "FROM debian:12",
        "USER root",
        "RUN apt-get install -y --only-upgrade libssl3",
        "USER app",
        "USER app",
        "USER root",
        "RUN pip install x==1",
        "USER app",
        "CMD x",
    ]
    assert "-FROM" not in diff  # the build stage is left alone
