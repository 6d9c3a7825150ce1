"""Rollout test fixtures: a store with real PyPA advisories, scanned assets and an approved plan.

The private sshd fixtures come from tests/ssh_fixtures.py (a plugin of tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.pw_testkit import write_pypi_bom
from typer.testing import CliRunner

from patchwarden.cli.main import app

DATA = Path(__file__).resolve().parents[1] / "data"
PYPA = DATA / "e2e" / "pypa"
NOW = "2026-11-23T08:00:00+00:00"

POLICY = """\
version: 1
windows:
  nightly:
    rrule: "FREQ=DAILY;BYHOUR=2;BYMINUTE=0"
    duration: 2h
    timezone: Europe/Berlin
rings: {canary: 1, pilot: 1, soak: 12h}
gates:
  - name: everything
    decision: auto_approve
rollout: {max_failure_rate: %s, soak: 0m}
"""

runner = CliRunner()


def make_env(
    tmp_path: Path,
    assets: list[str],
    *,
    max_failure_rate: float = 0.2,
    components: dict[str, str] | None = None,
) -> dict[str, str]:
    """A database with ``assets`` scanned (urllib3 1.24.1 + jinja2 2.10) and a saved plan."""
    db = str(tmp_path / "pw.db")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY % max_failure_rate)
    env = {"PATCHWARDEN_DB": db, "PATCHWARDEN_POLICY": str(policy), "PATCHWARDEN_ACTOR": "bob"}
    result = runner.invoke(app, ["feeds", "import", str(PYPA)], env=env)
    assert result.exit_code == 0, result.stdout
    for name in assets:
        sbom = write_pypi_bom(
            tmp_path / f"{name}.json", name, components or {"urllib3": "1.24.1", "jinja2": "2.10"}
        )
        result = runner.invoke(app, ["scan", "--sbom", str(sbom)], env=env)
        assert result.exit_code == 0, result.stdout
    result = runner.invoke(app, ["plan", "--now", NOW, "--json"], env=env)
    assert result.exit_code == 0, result.stdout
    return env


@pytest.fixture
def cli() -> CliRunner:
    """The typer test runner."""
    return runner


@pytest.fixture
def env_factory() -> Callable[..., dict[str, str]]:
    """``env_factory(tmp_path, assets, max_failure_rate=0.2)``: see :func:`make_env`."""
    return make_env
