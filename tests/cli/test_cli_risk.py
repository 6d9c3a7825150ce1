"""`findings --sort risk`, `actions` and `explain` on real PyPA advisories and real EPSS scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version
from tests.pw_testkit import write_pypi_bom
from typer.testing import CliRunner

from patchwarden.cli.main import app

DATA = Path(__file__).resolve().parents[1] / "data"
PYPA = DATA / "e2e" / "pypa"
EPSS = DATA / "cli" / "epss-e2e-cves.csv.gz"
runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> str:
    """Two assets with the same old releases: one internet-exposed prod, one dev."""
    url = str(tmp_path / "pw.db")
    pkgs = {"jinja2": "2.10", "urllib3": "1.24.1", "requests": "2.19.1"}
    assert runner.invoke(app, ["--db", url, "feeds", "import", str(PYPA), str(EPSS)]).exit_code == 0
    for name in ("shop", "lab"):
        bom = write_pypi_bom(tmp_path / f"{name}.json", name, pkgs)
        assert runner.invoke(app, ["--db", url, "scan", "--sbom", str(bom)]).exit_code == 0
    args = ["--db", url, "assets", "set"]
    assert runner.invoke(app, [*args, "shop", "-c", "5", "--exposed"]).exit_code == 0
    assert runner.invoke(app, [*args, "lab", "-c", "2", "-e", "dev"]).exit_code == 0
    return url


def _json(db: str, *args: str) -> Any:
    result = runner.invoke(app, ["--db", db, *args, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_findings_sorted_by_risk(db: str) -> None:
    rows = _json(db, "findings")
    scores = [r["risk_score"] for r in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 100 for s in scores)
    # the same vulnerability ranks higher on the exposed, critical prod asset
    for vuln in {r["vulnerability"] for r in rows}:
        by_asset = {r["asset"]: r["risk_score"] for r in rows if r["vulnerability"] == vuln}
        assert by_asset["shop"] > by_asset["lab"]
    severity_order = _json(db, "findings", "--sort", "severity")
    assert {r["id"] for r in severity_order} == {r["id"] for r in rows}


def test_actions_target_fixes_everything_and_rank_by_risk_removed(db: str) -> None:
    findings = _json(db, "findings")
    actions = _json(db, "actions")
    assert [a["risk_removed"] for a in actions] == sorted(
        (a["risk_removed"] for a in actions), reverse=True
    )
    for action in actions:
        closed = [f for f in findings if f["id"] in {c["finding"] for c in action["closes"]}]
        assert {(f["asset"], f["package"]) for f in closed} == {
            (action["asset"], action["package"])
        }
        assert Version(action["target_version"]) == max(Version(f["fixed_version"]) for f in closed)
        assert action["risk_removed"] == pytest.approx(
            sum(f["risk_score"] for f in closed), abs=1e-3
        )
    fleet = _json(db, "actions", "--by-package")
    jinja = next(u for u in fleet if u["package"] == "jinja2")
    assert sorted(jinja["assets"]) == ["lab", "shop"]


def test_explain_finding_and_action(db: str) -> None:
    top = _json(db, "findings")[0]
    explained = _json(db, "explain", str(top["id"]))
    assert explained["score"] == pytest.approx(top["risk_score"], abs=1e-3)
    shares = [f["share"] for f in explained["factors"]]
    assert sum(shares) == pytest.approx(1.0)
    names = {f["name"] for f in explained["factors"]}
    assert {"epss", "kev", "internet_exposed", "criticality", "environment"} <= names
    epss = next(f for f in explained["factors"] if f["name"] == "epss")
    assert epss["value"] == top["epss"]
    assert "FIRST EPSS 2026-01-30" in epss["source"]
    action = _json(db, "explain", "shop/urllib3")
    assert action["id"] == "shop/urllib3"
    assert len(action["explained"]) == len(action["closes"])
    result = runner.invoke(app, ["--db", db, "explain", "shop/nope"])
    assert result.exit_code == 2
    assert "shop/urllib3" in result.stderr


def test_policy_weights_change_scores_and_bad_policy_is_rejected(db: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nrisk:\n  environment_factors: {prod: 1.0, staging: 1.0, dev: 1.0}\n"
        "  criticality_factors: {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0}\n"
        "  internet_exposed_factor: 1.0\n"
    )
    result = runner.invoke(app, ["--db", db, "--policy", str(policy), "findings", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    for vuln in {r["vulnerability"] for r in rows}:
        by_asset = {r["asset"]: r["risk_score"] for r in rows if r["vulnerability"] == vuln}
        assert by_asset["shop"] == pytest.approx(by_asset["lab"])
    policy.write_text("version: 1\nrisk:\n  kev_floor: 2.5\n  bogus: 1\n")
    result = runner.invoke(app, ["--db", db, "--policy", str(policy), "findings"])
    assert result.exit_code == 2
    assert "policy.yaml:3" in result.stderr
    assert "kev_floor" in result.stderr
    assert "bogus" in result.stderr


def test_explain_names_the_cvss_source(db: str) -> None:
    """The vector's advisory is recorded and shown (PYSEC-2023-192 carries a CVSS 3.1 vector)."""
    rows = _json(db, "findings", "--vulnerability", "PYSEC-2023-192", "--asset", "shop")
    (row,) = rows
    explained = _json(db, "explain", str(row["id"]))
    impact = next(f for f in explained["factors"] if f["name"] == "cvss_impact")
    assert impact["value"] == "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:N"
    assert impact["source"] == "CVSS:3.1 vector from PYSEC-2023-192"
