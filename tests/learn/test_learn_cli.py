"""``patchwarden learn`` on a store without outcomes: clear errors, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from patchwarden.cli.main import app

runner = CliRunner()


def test_learn_commands_on_an_empty_store(tmp_path: Path) -> None:
    env = {"PATCHWARDEN_DB": str(tmp_path / "pw.db"), "PATCHWARDEN_ACTOR": "bob"}
    result = runner.invoke(app, ["learn", "report", "--out", str(tmp_path / "r")], env=env)
    assert result.exit_code == 2
    assert "0 outcome records; at least 4 are needed" in result.stderr
    assert not (tmp_path / "r").exists()
    result = runner.invoke(app, ["learn", "predict", "h/urllib3"], env=env)
    assert result.exit_code == 2
    assert "no plan yet" in result.stderr
    result = runner.invoke(app, ["learn", "train", "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["observations"], data["failures"], data["trigger"]) == (0, 0, "cli")
    assert data["base_rate"] == 0.5  # Jeffreys prior, no data
