"""Plans, approvals and risk acceptances end to end: saved, four-eyed, audited, expiring."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from tests.pw_testkit import write_pypi_bom
from typer.testing import CliRunner

from patchwarden.cli.main import app
from patchwarden.govern import accept_risk, prioritised
from patchwarden.policy import Policy
from patchwarden.store import Store

DATA = Path(__file__).resolve().parents[1] / "data"
PYPA = DATA / "e2e" / "pypa"
runner = CliRunner()
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
  - name: dev patches
    when: {environment: [dev]}
    decision: auto_approve
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A database with two scanned assets (prod `shop`, dev `lab`) and a policy file."""
    db = str(tmp_path / "pw.db")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    assert runner.invoke(app, ["--db", db, "feeds", "import", str(PYPA)]).exit_code == 0
    for name in ("shop", "lab"):
        bom = write_pypi_bom(
            tmp_path / f"{name}.json", name, {"jinja2": "2.10", "urllib3": "1.24.1"}
        )
        assert runner.invoke(app, ["--db", db, "scan", "--sbom", str(bom)]).exit_code == 0
    assert runner.invoke(app, ["--db", db, "assets", "set", "lab", "-e", "dev"]).exit_code == 0
    return {"PATCHWARDEN_DB": db, "PATCHWARDEN_POLICY": str(policy), "PATCHWARDEN_ACTOR": "bob"}


def _run(env: dict[str, str], *args: str, actor: str = "bob") -> Any:
    return runner.invoke(app, list(args), env={**env, "PATCHWARDEN_ACTOR": actor})


def _json(env: dict[str, str], *args: str, actor: str = "bob") -> Any:
    result = _run(env, *args, "--json", actor=actor)
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def test_plan_is_saved_gated_and_audited(env: dict[str, str], tmp_path: Path) -> None:
    html = tmp_path / "plan.html"
    plan = _json(env, "plan", "--now", NOW, "--html", str(html))
    by_asset = {c["asset_id"]: c for c in plan["changes"]}
    assert set(by_asset) == {"shop", "lab"}
    assert by_asset["lab"]["status"] == "approved"  # gate rule for dev
    assert "dev patches" in by_asset["lab"]["gate_rule"]
    assert by_asset["shop"]["status"] == "pending_approval"
    for change in plan["changes"]:
        start = dt.datetime.fromisoformat(change["slot_start"])
        assert start >= dt.datetime.fromisoformat(NOW)
        assert {a["package"] for a in change["actions"]} == {"jinja2", "urllib3"}
    # the canary (one asset) goes first; the other ring waits for the soak time
    first, second = sorted(plan["changes"], key=lambda c: c["slot_start"])
    assert dt.datetime.fromisoformat(second["slot_start"]) >= dt.datetime.fromisoformat(
        first["slot_end"]
    ) + dt.timedelta(hours=12)
    page = html.read_text()
    assert by_asset["shop"]["id"] in page
    assert "<script" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    log = _json(env, "audit", "log")
    actions = [e["action"] for e in log] if isinstance(log, list) else []
    assert "plan.create" in actions
    assert actions.count("gate.decide") >= 2
    assert _run(env, "audit", "verify").exit_code == 0
    shown = _json(env, "plan", "show")
    assert shown["id"] == plan["id"]


def test_four_eyes_approve_and_reject(env: dict[str, str]) -> None:
    plan = _json(env, "plan", "--now", NOW)
    shop = next(c for c in plan["changes"] if c["asset_id"] == "shop")
    short = shop["id"].split("/", 1)[1]
    own = _run(env, "approve", short, "--reason", "looks fine", actor="bob")
    assert own.exit_code == 2
    assert "four eyes" in own.stderr
    ok = _json(env, "approve", short, "--reason", "CAB-42", actor="alice")
    assert ok["status"] == "approved"
    again = _run(env, "approve", short, "--reason", "twice", actor="carol")
    assert again.exit_code == 2
    assert "already approved" in again.stderr
    lab = next(c for c in plan["changes"] if c["asset_id"] == "lab")
    auto = _run(env, "reject", lab["id"], "--reason", "no", actor="alice")
    assert auto.exit_code == 2
    assert "gate rule" in auto.stderr
    no_reason = _run(env, "approve", short, "--reason", " ", actor="carol")
    assert no_reason.exit_code == 2
    shown = _json(env, "plan", "show")
    shop_now = next(c for c in shown["changes"] if c["asset_id"] == "shop")
    (decision,) = shop_now["approvals"]
    assert (decision["actor"], decision["reason"], decision["decision"]) == (
        "alice",
        "CAB-42",
        "approve",
    )
    log = _json(env, "audit", "log")
    assert any(e["action"] == "approval.approve" and e["actor"] == "alice" for e in log)


def test_exception_hides_then_expires(env: dict[str, str]) -> None:
    findings = _json(env, "findings")
    target = next(f for f in findings if f["asset"] == "shop" and f["package"] == "jinja2")
    bad = _run(env, "except", str(target["id"]), "--until", "2001-01-01", "--reason", "x")
    assert bad.exit_code == 2
    assert "not in the future" in bad.stderr
    assert _run(env, "except", "99999", "--until", "2099-01-01", "--reason", "x").exit_code == 2
    made = _json(
        env,
        "except",
        str(target["id"]),
        "--until",
        "2099-01-01",
        "--reason",
        "WAF",
        "--owner",
        "sec",
    )
    ids = {f["id"] for f in _json(env, "findings")}
    assert target["id"] not in ids
    shown = _json(env, "findings", "--show-excepted")
    (row,) = [f for f in shown if f["id"] == target["id"]]
    assert row["accepted"]["owner"] == "sec"
    actions = _json(env, "actions")
    closes = {c["finding"] for a in actions for c in a["closes"]}
    assert target["id"] not in closes
    assert _run(env, "exceptions", "revoke", str(made["id"])).exit_code == 0
    assert target["id"] in {f["id"] for f in _json(env, "findings")}


def test_expired_acceptance_reopens_and_is_audited_once(env: dict[str, str]) -> None:
    store = Store.open(env["PATCHWARDEN_DB"])
    try:
        finding = store.findings()[0]
        start = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
        accept_risk(
            store,
            finding_id=finding.id,
            owner="sec",
            reason="temporary",
            until=start + dt.timedelta(days=7),
            actor="bob",
            now=start,
        )
        during = prioritised(store, Policy.default(), now=start + dt.timedelta(days=1))
        assert finding.id not in {s.finding.id for s in during.active}
        assert finding.id in {s.finding.id for s, _ in during.excepted}
        after = prioritised(store, Policy.default(), now=start + dt.timedelta(days=8))
        assert finding.id in {s.finding.id for s in after.active}
        prioritised(store, Policy.default(), now=start + dt.timedelta(days=9))
    finally:
        store.close()
    log = _json(env, "audit", "log")
    expiries = [e for e in log if e["action"] == "exception.expire"]
    assert len(expiries) == 1
