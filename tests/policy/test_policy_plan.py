"""policy.yaml planning sections: values reach PlanPolicy; each bad value names line and field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from patchwarden.errors import PolicyError
from patchwarden.model import Asset, AssetId, Environment, Severity
from patchwarden.plan import (
    Amount,
    Disruption,
    GateDecision,
    GateFacts,
    TargetMode,
    UpgradeLevel,
    evaluate_gate,
)
from patchwarden.policy import load_policy
from patchwarden.risk.ssvc import Decision

GOOD = """\
slas:
  kev_due_date: false
  ssvc: {immediate: 24h}
  severity: {high: 14d}
windows:
  weekend-eu:
    rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=2"
    duration: 3h30m
    timezone: Europe/Berlin
    assets: {environment: [prod], tags: [eu]}
  nightly:
    rrule: "FREQ=DAILY;BYHOUR=1"
    duration: 2h
freezes:
  - name: year-end
    start: 2025-12-20T00:00:00+01:00
    end: 2026-01-05T00:00:00+01:00
    assets: {service: [shop]}
    allow_emergency: true
rings: {canary: 2, pilot: 10%, soak: 2d}
max_unavailable: {default: 1, services: {web: 50%}}
gates:
  - name: dev patches
    when: {environment: [dev], upgrade_level: [patch, distro_revision], reboot: false}
    decision: auto_approve
  - name: kev
    when: {kev: true, predicted_failure_below: 0.1}
    decision: require_approval
target: newest_in_channel
schedule: {horizon: 30d, emergency_duration: 1h}
"""


def test_planning_sections_reach_the_plan_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    plan = load_policy(path).plan
    assert plan.slas.use_kev_due_date is False
    assert plan.slas.ssvc[Decision.IMMEDIATE] == dt.timedelta(hours=24)
    assert plan.slas.ssvc[Decision.SCHEDULED] == dt.timedelta(days=90)  # default kept
    assert plan.slas.severity[Severity.HIGH] == dt.timedelta(days=14)
    assert [w.name for w in plan.windows] == ["weekend-eu", "nightly"]
    eu = plan.windows[0]
    assert eu.duration == dt.timedelta(hours=3, minutes=30)
    assert eu.selector is not None
    assert eu.selector.matches(Asset(id=AssetId("a"), tags=("eu",)))
    assert not eu.selector.matches(Asset(id=AssetId("a"), environment=Environment.DEV))
    freeze = plan.freezes[0]
    assert freeze.start == dt.datetime(2025, 12, 19, 23, tzinfo=dt.UTC)
    assert freeze.allow_emergency
    assert plan.rings.canary == Amount(count=2)
    assert plan.rings.pilot == Amount(percent=10.0)
    assert plan.rings.soak == dt.timedelta(days=2)
    assert plan.limit("web", 7) == 3
    assert plan.limit("db", 7) == 1
    assert [g.name for g in plan.gates] == ["dev patches", "kev"]
    assert plan.target is TargetMode.NEWEST_IN_CHANNEL
    assert plan.horizon == dt.timedelta(days=30)
    facts = GateFacts(
        environment=Environment.DEV,
        upgrade_level=UpgradeLevel.PATCH,
        disruption=Disruption.RESTART,
        risk_score=10.0,
        kev=False,
    )
    outcome = evaluate_gate(plan.gates, facts)
    assert (outcome.decision, outcome.rule_index, outcome.rule_name) == (
        GateDecision.AUTO_APPROVE,
        0,
        "dev patches",
    )


BROKEN = """\
slas:
  ssvc: {urgent: 1d}
  severity: {high: 2 weeks}
windows:
  bad:
    rrule: "FREQ=SOMETIMES"
    duration: 0h
    timezone: Mars/Olympus
  nameless:
    duration: 1h
freezes:
  - name: backwards
    start: 2025-12-20T00:00:00+01:00
    end: 2025-12-01T00:00:00+01:00
  - name: naive
    start: 2025-12-20T00:00:00
    end: 2025-12-21
rings: {canary: 150%, soak: 1}
max_unavailable: {default: -1}
gates:
  - name: x
    when: {upgrade_level: [huge], risk_score_below: 200}
    decision: maybe
target: latest
"""


def test_broken_planning_sections_list_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(BROKEN)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    got = {(p.line, p.field) for p in info.value.problems}
    assert got == {
        (2, "slas.ssvc.urgent"),
        (3, "slas.severity.high"),
        (6, "windows.bad.rrule"),
        (7, "windows.bad.duration"),
        (8, "windows.bad.timezone"),
        (10, "windows.nameless.rrule"),
        (12, "freezes[0]"),
        (16, "freezes[1].start"),
        (17, "freezes[1].end"),
        (18, "rings.canary"),
        (18, "rings.soak"),
        (19, "max_unavailable.default"),
        (22, "gates[0].when.upgrade_level[0]"),
        (22, "gates[0].when.risk_score_below"),
        (23, "gates[0].decision"),
        (24, "target"),
    }
    text = str(info.value)
    assert "unknown IANA time zone 'Mars/Olympus'" in text
    assert "invalid rrule 'FREQ=SOMETIMES'" in text
    assert "invalid duration '2 weeks'" in text
    assert "must end after it starts" in text
    assert "a percentage must be in (0, 100]" in text
