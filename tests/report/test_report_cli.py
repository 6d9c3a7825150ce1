"""`patchwarden report` and `report evidence` end to end on a real scan (PyPA advisories, an
SBOM asset scanned twice: the upgrade resolves findings)."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.pw_testkit import write_pypi_bom
from typer.testing import CliRunner

from patchwarden.cli.main import app

PYPA = Path(__file__).resolve().parents[1] / "data" / "e2e" / "pypa"
runner = CliRunner()


def _bom(path: Path, urllib3: str) -> Path:
    return write_pypi_bom(path, "shop", {"jinja2": "2.10", "urllib3": urllib3})


@pytest.fixture
def db(tmp_path: Path) -> str:
    """Scan old releases, then again after upgrading urllib3 (its findings resolve)."""
    url = str(tmp_path / "pw.db")
    assert runner.invoke(app, ["--db", url, "feeds", "import", str(PYPA)]).exit_code == 0
    for version in ("1.24.1", "2.2.2"):
        bom = _bom(tmp_path / "bom.json", version)
        result = runner.invoke(app, ["--db", url, "scan", "--sbom", str(bom)])
        assert result.exit_code == 0, result.stderr
    return url


NOW = (dt.datetime.now(dt.UTC) + dt.timedelta(days=120)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_report_writes_self_contained_html_csv_json(db: str, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = runner.invoke(app, ["--db", db, "report", "--out", str(out), "--now", NOW])
    assert result.exit_code == 0, result.stderr
    names = {p.name for p in out.iterdir()}
    assert names == {
        "report.html",
        "report.json",
        "time_to_patch.csv",
        "exposure.csv",
        "sla.csv",
        "burn_down.csv",
        "rollouts.csv",
    }
    page = (out / "report.html").read_text()
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert not re.search(r"(src|href)\s*=\s*['\"](?!data:)", page)
    assert not re.search(r"https?://", page)
    pngs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(pngs) == 5
    assert all(base64.b64decode(p).startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)
    assert "no data: no rollout outcomes are recorded yet" in page

    doc = json.loads((out / "report.json").read_text())
    overall = next(r for r in doc["time_to_patch"] if r["dimension"] == "all")
    assert overall["findings"] == doc["findings"] > overall["fixed"] > 0
    assert overall["open"] == doc["open"] > 0
    # the fixed ones were fixed seconds after being found, the open ones are censored at 120
    # days: the restricted mean is (share open) x 120 days, the naive mean about 0
    share_open = overall["open"] / overall["findings"]
    assert overall["km_restricted_mean_days"] == pytest.approx(share_open * 120, rel=0.01)
    assert overall["naive_mean_fixed_days"] < 0.01
    assert doc["rollouts"]["success_rate"] is None
    assert doc["rollouts"]["note"].startswith("no data")
    exposure = next(e for e in doc["exposure"] if e["dimension"] == "all")
    assert exposure["exposure_days"] == pytest.approx(doc["open"] * 120, rel=0.01)
    assert len(doc["burn_down"]) in (121, 122)
    assert doc["burn_down"][-1]["open_findings"] == doc["open"]
    sla = next(s for s in doc["sla"] if s["dimension"] == "all")
    # 120 days on: every open finding with a <= 90-day SLA is overdue
    assert sla["overdue"] > 0
    assert sla["compliance"] is not None
    with (out / "time_to_patch.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["dimension"] == "all"
    assert int(rows[0]["findings"]) == doc["findings"]


def test_report_format_subset_and_errors(db: str, tmp_path: Path) -> None:
    out = tmp_path / "only-json"
    ok = runner.invoke(app, ["--db", db, "report", "-o", str(out), "--format", "json"])
    assert ok.exit_code == 0, ok.stderr
    assert [p.name for p in out.iterdir()] == ["report.json"]
    bad = runner.invoke(app, ["--db", db, "report", "-o", str(out), "--format", "pdf"])
    assert bad.exit_code == 2
    assert "unknown format 'pdf'" in bad.stderr
    missing = runner.invoke(app, ["--db", db, "report"])
    assert missing.exit_code == 2
    assert "missing --out" in missing.stderr
    when = runner.invoke(app, ["--db", db, "report", "-o", str(out), "--now", "yesterday"])
    assert when.exit_code == 2
    assert "not an ISO 8601 time: 'yesterday'" in when.stderr


def test_evidence_export_timelines(db: str, tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{db}")
    tables = set(sa.inspect(engine).get_table_names())
    planned = {"plans", "changes", "approvals"} <= tables
    if planned:  # a stored plan whose change covers the jinja2 upgrade, approved by alice
        meta = sa.MetaData()
        plans, changes, approvals = (
            sa.Table(n, meta, autoload_with=engine) for n in ("plans", "changes", "approvals")
        )
        at = dt.datetime(2030, 1, 2, 3, 4, 5)
        with engine.begin() as conn:
            conn.execute(
                plans.insert().values(
                    id=1,
                    created_at=at,
                    created_by="bob",
                    policy_digest="0" * 64,
                    summary={},
                    unscheduled=[],
                )
            )
            conn.execute(
                changes.insert().values(
                    id="shop@20300103T0200Z",
                    plan_id=1,
                    asset_id="shop",
                    slot_start=at,
                    slot_end=at,
                    ring="canary",
                    wave=1,
                    gate="require_approval",
                    gate_rule="default",
                    sla_deadline=None,
                    breach=False,
                    emergency=False,
                    disruption="restart",
                    actions=["shop/jinja2"],
                    status="approved",
                )
            )
            conn.execute(
                approvals.insert().values(
                    change_id="shop@20300103T0200Z",
                    decision="approve",
                    actor="alice",
                    reason="ok",
                    at=at + dt.timedelta(hours=1),
                )
            )
    engine.dispose()
    csv_out = tmp_path / "ev" / "evidence.csv"
    result = runner.invoke(app, ["--db", db, "report", "evidence", "--out", str(csv_out)])
    assert result.exit_code == 0, result.stderr
    with csv_out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    assert {r["asset"] for r in rows} == {"shop"}
    needed = {"found_at", "scored_at", "planned_at", "approved_by", "patched_at", "verified_at"}
    assert needed <= set(rows[0])
    urllib3 = [r for r in rows if r["package"] == "urllib3"]
    jinja2 = [r for r in rows if r["package"] == "jinja2"]
    assert urllib3
    assert jinja2
    assert all(r["status"] == "resolved" and r["verified_by"] == "rescan" for r in urllib3)
    assert all(r["verified_at"] == r["resolved_at"] != "" for r in urllib3)
    assert all(r["status"] == "open" and r["verified_at"] == "" for r in jinja2)
    assert all(r["found_at"].endswith("Z") and r["sla_due"] for r in rows)
    if planned:
        assert {(r["planned_at"], r["approved_by"]) for r in jinja2} == {
            ("2030-01-02T03:04:05Z", "alice")
        }
        assert all(r["planned_at"] == "" for r in urllib3)
    else:
        assert all(r["planned_at"] == r["approved_by"] == "" for r in rows)
    json_out = tmp_path / "evidence.json"
    result = runner.invoke(app, ["--db", db, "report", "evidence", "-o", str(json_out)])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(json_out.read_text())
    assert len(doc["findings"]) == len(rows)
    assert doc["columns"][0] == "finding_id"
