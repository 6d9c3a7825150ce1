"""Rollout outcomes reach the report's patch success and rollback rates."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from patchwarden.cli.main import app

runner = CliRunner()
ASSETS = ["a1", "a2", "a3", "a4"]


def test_report_counts_applied_and_rolled_back_changes(
    tmp_path: Path, env_factory: Callable[..., dict[str, str]]
) -> None:
    env = env_factory(tmp_path, ASSETS, max_failure_rate=0.9)
    plan = json.loads(runner.invoke(app, ["plan", "show", "--json"], env=env).stdout)
    victim = sorted(c["asset_id"] for c in plan["changes"] if c["ring"] == "broad")[0]
    result = runner.invoke(
        app,
        ["rollout", "start", "--backend", "simulate", "-q",
         "--sim-fail", f"{victim}=health_check_failed"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 3, result.stdout  # completed, with a rolled-back change
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", "--out", str(out), "--format", "json"], env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    rates = json.loads((out / "report.json").read_text())["rollouts"]
    assert rates["outcomes"] == len(ASSETS)
    assert rates["rolled_back"] == 1
    assert rates["succeeded"] == len(ASSETS) - 1
    assert rates["rollback_rate"] == 1 / len(ASSETS)


def test_evidence_names_the_patch_and_its_verification(
    tmp_path: Path, env_factory: Callable[..., dict[str, str]]
) -> None:
    env = env_factory(tmp_path, ASSETS)
    result = runner.invoke(app, ["rollout", "start", "--backend", "simulate", "-q"], env=env)
    assert result.exit_code == 0, result.stdout
    out = tmp_path / "evidence.json"
    result = runner.invoke(app, ["report", "evidence", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    rows = json.loads(out.read_text())
    rows = rows["findings"] if isinstance(rows, dict) else rows
    assert rows
    for row in rows:
        assert row["patched_at"] is not None
        assert row["verified_by"] == "verify"
