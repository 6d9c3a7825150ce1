"""``patchwarden image scan`` / ``image fix`` end to end on a built image and real advisories."""

from __future__ import annotations

import json
from pathlib import Path

from tests.images import imagekit
from typer.testing import CliRunner

from patchwarden.cli.main import app

runner = CliRunner()


def test_image_scan_and_fix(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'pw.db'}"
    archive = imagekit.write_docker_archive(imagekit.app_image(), tmp_path / "app.tar")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text('FROM debian:12\nRUN pip install jinja2==2.10\nCMD ["sh"]\n')
    done = runner.invoke(
        app, ["--db", db, "-q", "feeds", "import", str(imagekit.DATA / "images" / "osv")]
    )
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["--db", db, "-q", "image", "scan", str(archive), "--json"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["asset"] == "registry.example/app:1.0"
    assert doc["findings"] == {"new": 2, "open": 2}
    assert len(doc["layers"]) == 3
    done = runner.invoke(
        app,
        ["--db", db, "-q", "image", "fix", str(archive), "--dockerfile", str(dockerfile), "--json"],
    )
    assert done.exit_code == 0, done.output
    plan = json.loads(done.stdout)
    (up,) = plan["upgrades"]
    assert up["package"] == "jinja2"
    assert up["target_version"] == "2.11.3"
    assert up["vulnerabilities"] == ["CVE-2019-10906", "CVE-2020-28493"]
    assert (
        "+RUN /usr/local/bin/python3 -m pip install --no-cache-dir jinja2==2.11.3"
        in (plan["dockerfile_diff"])
    )


def test_image_scan_refuses_a_hostile_archive(tmp_path: Path) -> None:
    layer = imagekit.layer_tar([imagekit.file("../../escape", "x")])
    archive = imagekit.write_docker_archive(imagekit.Image(layers=[layer]), tmp_path / "e.tar")
    done = runner.invoke(
        app, ["--db", f"sqlite:///{tmp_path / 'pw.db'}", "image", "scan", str(archive)]
    )
    assert done.exit_code == 2
    assert "path has a '..' part" in done.output
    assert not (tmp_path.parent / "escape").exists()
