"""Scheduler and helper cases: DST, freezes, capacity, rings, SLA breach, levels, exceptions."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from patchwarden.model import (
    Asset,
    AssetId,
    Environment,
    Finding,
    FixState,
    KevEntry,
    Severity,
    VulnId,
)
from patchwarden.plan import (
    Amount,
    BreachReason,
    Disruption,
    Freeze,
    GateDecision,
    GateReason,
    PlanPolicy,
    RingPolicy,
    RiskAcceptance,
    TargetMode,
    UnscheduledReason,
    UpgradeLevel,
    Window,
    disruption,
    retarget,
    schedule,
    split_exceptions,
    upgrade_level,
)
from patchwarden.prioritize import Action, ScoredFinding
from patchwarden.risk import RiskInput, score

NOW = dt.datetime(2025, 3, 24, 12, 0, tzinfo=dt.UTC)
DAILY = Window(name="nightly", rrule="FREQ=DAILY;BYHOUR=2", duration=dt.timedelta(hours=2))


def make(
    asset: str,
    package: str = "openssl",
    *,
    severity: Severity = Severity.LOW,
    cve: str = "CVE-2025-0001",
    fixed: str = "3.0.14-1~deb12u1",
    installed: str = "3.0.11-1~deb12u2",
    seen: dt.datetime = NOW,
) -> Action:
    f = Finding(
        id=hash((asset, package, cve)) % 10**6, asset=AssetId(asset), ecosystem="Debian:12",
        package=package, installed_version=installed, binaries=(package,),
        vulnerability=VulnId(cve), aliases=(), advisories=(), fix_state=FixState.FIXED,
        fixed_version=fixed, severity=severity, cvss_score=None, kev=False, epss=None,
        epss_percentile=None, first_seen=seen, last_seen=seen, resolved_at=None,
    )  # fmt: skip
    risk = score(RiskInput(vulnerability=cve, asset=asset, severity=severity))
    return Action(
        id=f"{asset}/{package}", asset=AssetId(asset), ecosystem="Debian:12", package=package,
        binaries=(package,), installed_version=installed, target_version=fixed,
        closes=(ScoredFinding(finding=f, risk=risk),), remaining=(), risk_removed=risk.score,
    )  # fmt: skip


def occurrences(w: Window, start: str, end: str) -> list[str]:
    lo, hi = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
    return [s.isoformat() for s, _ in w.occurrences(lo, hi)]


def test_window_keeps_local_time_across_dst_gap_and_fold() -> None:
    w = Window(
        name="x", rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=30", duration=dt.timedelta(hours=1),
        timezone="Europe/Berlin",
    )  # fmt: skip
    # 2025-03-30: 02:00 CET -> 03:00 CEST; 02:30 does not exist and resolves to 03:30 CEST.
    assert occurrences(w, "2025-03-29T00:00+00:00", "2025-03-31T12:00+00:00") == [
        "2025-03-29T01:30:00+00:00",
        "2025-03-30T01:30:00+00:00",
        "2025-03-31T00:30:00+00:00",
    ]
    # 2025-10-26: 03:00 CEST -> 02:00 CET; 02:30 happens twice, the first (CEST) is used.
    assert occurrences(w, "2025-10-25T00:00+00:00", "2025-10-27T12:00+00:00") == [
        "2025-10-25T00:30:00+00:00",
        "2025-10-26T00:30:00+00:00",
        "2025-10-27T01:30:00+00:00",
    ]


def test_freeze_covering_the_only_window() -> None:
    freeze = Freeze(name="all", start=NOW, end=NOW + dt.timedelta(days=400))
    policy = PlanPolicy(windows=(DAILY,), freezes=(freeze,), horizon=dt.timedelta(days=30))
    plan = schedule([make("a")], [Asset(id=AssetId("a"))], policy, NOW)  # due in 90 d > horizon
    assert [(u.action, u.reason) for u in plan.unscheduled] == [
        ("a/openssl", UnscheduledReason.NO_SLOT)
    ]
    urgent = make("a", severity=Severity.CRITICAL)  # 7 d deadline inside the horizon
    plan = schedule([urgent], [Asset(id=AssetId("a"))], policy, NOW)
    assert plan.unscheduled[0].reason is UnscheduledReason.NO_EMERGENCY_SLOT
    thawed = dataclasses.replace(freeze, allow_emergency=True)
    plan = schedule([urgent], [Asset(id=AssetId("a"))], dataclasses.replace(
        policy, freezes=(thawed,)), NOW)  # fmt: skip
    (change,) = plan.changes
    assert change.emergency
    assert change.start == NOW
    assert change.breach is BreachReason.NO_WINDOW_BEFORE_DEADLINE
    assert change.gate.reason is GateReason.EMERGENCY


def test_max_unavailable_spreads_replicas_and_rings_soak() -> None:
    assets = [Asset(id=AssetId(f"web-{i}"), service="web") for i in range(4)]
    policy = PlanPolicy(
        windows=(DAILY,), max_unavailable=Amount(percent=25.0),
        rings=RingPolicy(canary=Amount(count=1), pilot=Amount(count=1),
                         soak=dt.timedelta(hours=30)),
    )  # fmt: skip
    plan = schedule([make(a.id) for a in assets], assets, policy, NOW)
    starts = [(c.asset, c.ring.value, c.start.isoformat(), c.wave) for c in plan.changes]
    assert starts == [
        ("web-0", "canary", "2025-03-25T02:00:00+00:00", 1),
        ("web-1", "pilot", "2025-03-27T02:00:00+00:00", 2),  # 04:00 + 30 h soak -> next day
        ("web-2", "broad", "2025-03-29T02:00:00+00:00", 3),
        ("web-3", "broad", "2025-03-30T02:00:00+00:00", 4),  # one web replica at a time
    ]
    assert plan.summary.require_approval == 4  # no gate rules: everything waits for a human


def test_kev_due_date_in_the_past_makes_an_emergency_change() -> None:
    entry = KevEntry(
        cve_id="CVE-2025-0001",
        date_added=dt.date(2025, 1, 2),
        due_date=dt.date(2025, 1, 23),
        known_ransomware=False,
    )
    kev = {"CVE-2025-0001": entry}
    plan = schedule([make("a")], [Asset(id=AssetId("a"))], PlanPolicy(), NOW, kev=kev)
    (change,) = plan.changes
    assert change.deadline.due == dt.datetime(2025, 1, 24, tzinfo=dt.UTC)
    assert change.breach is BreachReason.DEADLINE_PASSED
    assert change.sla_breach
    assert change.gate.decision is GateDecision.REQUIRE_APPROVAL
    assert change.wave == 0


def test_unknown_window_and_naive_now() -> None:
    asset = Asset(id=AssetId("a"), maintenance_window="sundays")
    plan = schedule([make("a")], [asset], PlanPolicy(), NOW)
    assert plan.unscheduled[0].reason is UnscheduledReason.UNKNOWN_WINDOW
    assert "'sundays'" in plan.unscheduled[0].message
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule([], [], PlanPolicy(), NOW.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("ecosystem", "installed", "target", "level"),
    [
        ("Debian:12", "2.36-9+deb12u4", "2.36-9+deb12u7", UpgradeLevel.DISTRO_REVISION),
        ("Debian:12", "1.2.3+dfsg-1", "1.2.3+dfsg-1+deb12u1", UpgradeLevel.DISTRO_REVISION),
        ("Debian:12", "252.22-1~deb12u1", "252.26-1~deb12u2", UpgradeLevel.MINOR),
        ("Debian:12", "1:9.18.19-1~deb12u1", "1:9.18.24-1", UpgradeLevel.PATCH),
        ("Debian:12", "1:2.0-1", "2:2.0-1", UpgradeLevel.MAJOR),
        ("Ubuntu:22.04", "3.0.2-0ubuntu1.10", "3.0.2-0ubuntu1.15", UpgradeLevel.DISTRO_REVISION),
        ("Alpine:v3.19", "3.1.4-r5", "3.1.4-r6", UpgradeLevel.DISTRO_REVISION),
        ("PyPI", "2.31.0", "2.31.1", UpgradeLevel.PATCH),
        ("PyPI", "1.26", "2.0", UpgradeLevel.MAJOR),
        ("npm", "4.17.20", "4.18.0", UpgradeLevel.MINOR),
        ("Go", "v0.17.0", "v0.23.0", UpgradeLevel.MINOR),
    ],
)
def test_upgrade_levels(ecosystem: str, installed: str, target: str, level: UpgradeLevel) -> None:
    assert upgrade_level(ecosystem, installed, target) is level


def test_disruption_list_and_metadata_hook() -> None:
    assert disruption(make("a", "linux")) is Disruption.REBOOT
    assert disruption(make("a", "systemd")) is Disruption.REBOOT
    assert disruption(make("a", "openssl")) is Disruption.RESTART
    assert disruption(make("a", "tzdata"), lambda a: Disruption.NONE) is Disruption.NONE


def test_exceptions_expire_and_reopen() -> None:
    f1, f2 = make("a").closes[0].finding, make("b").closes[0].finding
    until = NOW + dt.timedelta(days=1)
    accept = [RiskAcceptance(finding=f1.id, owner="ops", reason="compensated", expires=until)]
    split = split_exceptions([f1, f2], accept, NOW)
    assert split.active == (f2,)
    assert split.excepted == ((f1, accept[0]),)
    later = split_exceptions([f1, f2], accept, until)
    assert later.active == (f1, f2)
    assert later.expired == tuple(accept)


def test_newest_in_channel() -> None:
    a = make("a", fixed="3.0.13-1~deb12u1")
    b = make("b", fixed="3.0.15-1~deb12u1", cve="CVE-2025-0002")
    assert [x.target_version for x in retarget([a, b], TargetMode.NEWEST_IN_CHANNEL)] == [
        "3.0.15-1~deb12u1",
        "3.0.15-1~deb12u1",
    ]
    assert retarget([a, b], TargetMode.SMALLEST_FIX) == [a, b]


def test_gate_rule_recorded_on_changes() -> None:
    from patchwarden.plan import GateConditions, GateRule

    rule = GateRule(name="dev", when=GateConditions(environments=(Environment.DEV,)),
                    decision=GateDecision.AUTO_APPROVE)  # fmt: skip
    assets = [Asset(id=AssetId("d"), environment=Environment.DEV), Asset(id=AssetId("p"))]
    plan = schedule([make("d"), make("p")], assets, PlanPolicy(gates=(rule,)), NOW)
    got = {c.asset: (c.gate.decision, c.gate.rule_index, c.gate.rule_name) for c in plan.changes}
    assert got == {
        "d": (GateDecision.AUTO_APPROVE, 0, "dev"),
        "p": (GateDecision.REQUIRE_APPROVAL, None, "default"),
    }
