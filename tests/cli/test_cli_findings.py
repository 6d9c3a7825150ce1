"""`patchwarden findings`: filters, JSON field names and the CI gate's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.pw_testkit import write_pypi_bom
from typer.testing import CliRunner

from patchwarden.cli.main import app

PYPA = Path(__file__).resolve().parents[1] / "data" / "e2e" / "pypa"
runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A database with real PyPA advisories and an SBOM asset running old releases."""
    url = str(tmp_path / "pw.db")
    bom = write_pypi_bom(tmp_path / "bom.json", "shop", {"jinja2": "2.10", "urllib3": "1.24.1"})
    assert runner.invoke(app, ["--db", url, "feeds", "import", str(PYPA)]).exit_code == 0
    result = runner.invoke(app, ["--db", url, "scan", "--sbom", str(bom)])
    assert result.exit_code == 0, result.stderr
    return url


def _findings(db: str, *args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["--db", db, "findings", "--json", *args])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def test_json_fields_and_filters(db: str) -> None:
    rows = _findings(db)
    assert rows
    required = {"asset", "ecosystem", "package", "installed_version", "vulnerability"}
    required |= {"aliases", "fixed_version", "severity", "kev", "epss"}
    assert all(required <= set(r) for r in rows)
    assert {r["asset"] for r in rows} == {"shop"}
    urllib3 = _findings(db, "--package", "urllib3")
    assert urllib3
    assert {r["package"] for r in urllib3} == {"urllib3"}
    high = _findings(db, "--severity", "high")
    assert all(r["severity"] in {"high", "critical"} for r in high)
    assert _findings(db, "--kev") == []
    assert _findings(db, "--asset", "other") == []
    by_alias = _findings(db, "--vulnerability", "PYSEC-2019-132")
    assert [r["vulnerability"] for r in by_alias] == ["CVE-2019-11236"]


def test_fail_on_gate(db: str) -> None:
    severities = {r["severity"] for r in _findings(db)}
    assert "high" in severities
    assert "critical" not in severities
    gated = runner.invoke(app, ["--db", db, "findings", "--fail-on", "high"])
    assert gated.exit_code == 1
    assert "at or above high" in gated.stderr
    assert runner.invoke(app, ["--db", db, "findings", "--fail-on", "critical"]).exit_code == 0
