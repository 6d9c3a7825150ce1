"""``patchwarden image``: scan container images without a daemon, and plan their fixes.

The shared CLI helpers (store, policy, error exit) live in :mod:`patchwarden.cli.main`,
which registers this sub-app; they are imported inside the commands so that the two modules
do not import each other at load time.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from patchwarden.errors import InventoryError
from patchwarden.inventory.oci import ImageInventory, scan_image
from patchwarden.remediate_image import plan_image_remediation

image_app = typer.Typer(
    help=(
        "Container images: scan a `docker save` / `podman save` tarball or an OCI layout "
        "directory (no daemon, no registry), and plan the fix.\n\n"
        "Example:\n\n  docker save app:1.0 -o app.tar\n\n  patchwarden image scan app.tar\n\n"
        "  patchwarden image fix app.tar --dockerfile Dockerfile --base debian-12.9.tar"
    ),
    no_args_is_help=True,
)

_out = Console(highlight=False, soft_wrap=True)

_Name = Annotated[
    str | None, typer.Option("--name", help="Asset name (default: the image's first tag).")
]
_Platform = Annotated[
    str | None,
    typer.Option("--platform", help="os/arch of a multi-platform index (linux/amd64)."),
]


def _scan(path: Path, name: str | None, platform: str | None) -> ImageInventory:
    from patchwarden.cli.main import Exit, _fail

    try:
        return scan_image(path, name=name, platform=platform)
    except (InventoryError, OSError) as exc:
        raise _fail(f"image {str(path)!r}: {exc}", Exit.USAGE) from exc


def image_json(inv: ImageInventory) -> dict[str, Any]:
    """The JSON form of a scanned image (field names are a public interface)."""
    info = inv.image
    return {
        "asset": inv.inventory.asset.id,
        "format": info.format.value,
        "manifest_digest": info.manifest_digest,
        "config_digest": info.config_digest,
        "repo_tags": list(info.repo_tags),
        "base_name": info.base_name,
        "base_digest": info.base_digest,
        "distro": inv.inventory.distro,
        "layers": [
            {
                "index": la.index,
                "digest": la.digest,
                "diff_id": la.diff_id,
                "created_by": la.created_by,
            }
            for la in info.layers
        ],
        "packages": [
            {
                "ecosystem": lp.package.ecosystem,
                "name": lp.package.name,
                "version": lp.package.version,
                "purl": lp.package.purl,
                "layer": lp.layer,
                "path": lp.path,
            }
            for lp in inv.packages
        ],
    }


@image_app.command("scan")
def image_scan(
    path: Annotated[Path, typer.Argument(help="Image tarball or OCI layout directory.")],
    name: _Name = None,
    platform: _Platform = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the image as JSON.")] = False,
) -> None:
    """Inventory an image layer by layer and match it against the imported advisories.

    Example:

      patchwarden image scan app.tar --name app
    """
    from patchwarden.cli.main import _observer, _store
    from patchwarden.service import scan

    inv = _scan(path, name, platform)
    with _store() as store, _observer() as obs:
        report = scan(store, [inv.inventory], observer=obs)
    if as_json:
        doc = image_json(inv)
        doc["findings"] = {
            "new": report.assets[0].findings.new,
            "open": report.assets[0].findings.new
            + report.assets[0].findings.still_open
            + report.assets[0].findings.reopened,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    info = inv.image
    _out.print(
        f"{escape(inv.inventory.asset.id)}: {len(inv.packages)} packages in "
        f"{len(info.layers)} layers, distro {inv.inventory.distro or 'unknown'}, "
        f"digest {info.manifest_digest or info.config_digest}"
    )
    if info.base_name or info.base_digest:
        _out.print(f"base image: {info.base_name or '?'} {info.base_digest or ''}")
    table = Table(title="layers")
    for col in ("layer", "diff_id", "packages", "created by"):
        table.add_column(col)
    for la in info.layers:
        count = sum(1 for lp in inv.packages if lp.layer == la.index)
        table.add_row(
            str(la.index), la.diff_id[:19], str(count), escape((la.created_by or "")[:70])
        )
    _out.print(table)
    a = report.assets[0]
    _out.print(
        f"findings: {a.findings.new + a.findings.still_open + a.findings.reopened} open "
        f"({a.findings.new} new)"
    )


@image_app.command("fix")
def image_fix(
    path: Annotated[Path, typer.Argument(help="Image tarball or OCI layout directory.")],
    name: _Name = None,
    platform: _Platform = None,
    dockerfile: Annotated[
        Path | None, typer.Option("--dockerfile", help="The Dockerfile to patch (diff).")
    ] = None,
    base: Annotated[
        Path | None,
        typer.Option("--base", help="A candidate base image (tarball or OCI layout)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Scan an image and print its upgrades, their layers and a patched Dockerfile.

    Example:

      patchwarden image fix app.tar --dockerfile Dockerfile --base debian-12.9.oci
    """
    from patchwarden.cli.main import Exit, _fail, _observer, _policy, _store
    from patchwarden.prioritize import plan_actions, score_findings
    from patchwarden.service import scan
    from patchwarden.store import FindingFilter

    inv = _scan(path, name, platform)
    candidate = _scan(base, None, platform) if base is not None else None
    text = None
    if dockerfile is not None:
        try:
            text = dockerfile.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(f"dockerfile {str(dockerfile)!r}: {exc}", Exit.USAGE) from exc
    with _store() as store, _observer() as obs:
        scan(store, [inv.inventory], observer=obs)
        rows = store.findings(FindingFilter(assets=(inv.inventory.asset.id,)))
        actions = plan_actions(score_findings(store, rows, _policy().risk))
    try:
        plan = plan_image_remediation(
            inv,
            actions,
            candidate_base=candidate,
            dockerfile=text,
            dockerfile_name=dockerfile.name if dockerfile else "Dockerfile",
        )
    except ValueError as exc:
        raise _fail(str(exc), Exit.USAGE) from exc
    if as_json:
        doc = {
            "asset": inv.inventory.asset.id,
            "upgrades": [
                {
                    "ecosystem": u.action.ecosystem,
                    "package": u.action.package,
                    "installed_version": u.action.installed_version,
                    "target_version": u.action.target_version,
                    "layers": [inv.image.layers[i].diff_id for i in u.layers],
                    "paths": sorted({p.path for p in u.packages}),
                    "base": u.base.value if u.base else None,
                    "base_version": u.base_version,
                    "vulnerabilities": sorted({s.finding.vulnerability for s in u.action.closes}),
                }
                for u in plan.upgrades
            ],
            "new_base": plan.new_base,
            "instructions": list(plan.instructions),
            "dockerfile_diff": plan.dockerfile_diff,
            "patch_layer": plan.patch_layer,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    if not plan.upgrades:
        _out.print(f"{escape(inv.inventory.asset.id)}: no fixable findings")
        return
    table = Table(title=f"upgrades for {escape(inv.inventory.asset.id)}")
    for col in ("package", "installed", "target", "layer", "base"):
        table.add_column(col)
    for u in plan.upgrades:
        table.add_row(
            escape(f"{u.action.ecosystem}/{u.action.package}"),
            escape(u.action.installed_version),
            escape(u.action.target_version),
            ", ".join(str(i) for i in u.layers) or "?",
            f"{u.base.value} {u.base_version or ''}" if u.base else "-",
        )
    _out.print(table)
    if plan.new_base:
        _out.print(f"new base image: {escape(plan.new_base)}")
    if plan.dockerfile_diff:
        _out.print(escape(plan.dockerfile_diff), end="")
    else:
        _out.print("patch layer:\n" + escape(plan.patch_layer), end="")
