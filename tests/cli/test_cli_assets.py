"""`patchwarden assets` and `assets set`: context is listed and can be edited."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from patchwarden.cli.main import app

INVENTORY = Path(__file__).resolve().parents[1] / "data" / "inventory"
runner = CliRunner()


def test_assets_set_edits_context(tmp_path: Path) -> None:
    db = str(tmp_path / "pw.db")
    status = next(INVENTORY.rglob("status"))
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "assets:\n"
        "  - name: web-01\n"
        "    tags: [waf]\n"
        f"    inventory:\n      dpkg_status: {status}\n      distro: 'Debian:12'\n"
    )
    result = runner.invoke(app, ["--db", db, "scan", "--fleet", str(fleet)])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(
        app,
        [
            "--db",
            db,
            "assets",
            "set",
            "web-01",
            "-c",
            "5",
            "--exposed",
            "--tag",
            "isolated",
            "--untag",
            "waf",
            "--environment",
            "staging",
        ],
    )
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(runner.invoke(app, ["--db", db, "assets", "--json"]).stdout)
    assert row["criticality"] == 5
    assert row["internet_exposed"] is True
    assert row["environment"] == "staging"
    assert row["tags"] == ["isolated"]
    assert row["distro"] == "Debian:12"
    assert row["package_count"] > 0


def test_assets_set_unknown_asset_and_bad_value(tmp_path: Path) -> None:
    db = str(tmp_path / "pw.db")
    result = runner.invoke(app, ["--db", db, "assets", "set", "nope", "-c", "3"])
    assert result.exit_code == 2
    assert "'nope'" in result.stderr
    result = runner.invoke(app, ["--db", db, "assets", "set", "nope", "-c", "9"])
    assert result.exit_code == 2
