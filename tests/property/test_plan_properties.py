"""Scheduler invariants on random fleets and policies (hypothesis).

Window occurrences are recomputed here independently: dateutil expands the rule with a
time-zone-aware DTSTART (it keeps wall-clock times and attaches the zone), which is a
different path from the scheduler's naive-local expansion.
"""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchwarden.model import Asset, AssetId, Environment, Finding, FixState, Severity, VulnId
from patchwarden.plan import (
    Amount,
    Freeze,
    GateConditions,
    GateDecision,
    GateRule,
    Plan,
    PlanPolicy,
    RingPolicy,
    Selector,
    Window,
    schedule,
)
from patchwarden.prioritize import Action, ScoredFinding
from patchwarden.risk import RiskInput, score

NOW = dt.datetime(2025, 3, 24, 12, 0, tzinfo=dt.UTC)
RULES = [
    "FREQ=DAILY;BYHOUR=2",
    "FREQ=WEEKLY;BYDAY=SA,SU;BYHOUR=2;BYMINUTE=30",
    "FREQ=WEEKLY;BYDAY=TU;BYHOUR=22",
    "FREQ=HOURLY;INTERVAL=7",
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
SEVERITIES = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW]


def action(asset: str, n: int, severity: Severity, kev: bool, age_days: int) -> Action:
    seen = NOW - dt.timedelta(days=age_days)
    vuln = VulnId(f"CVE-2025-{n:05d}")
    finding = Finding(
        id=n,
        asset=AssetId(asset),
        ecosystem="Debian:12",
        package=f"pkg{n % 7}",
        installed_version="1.2.3-1",
        binaries=(f"pkg{n % 7}",),
        vulnerability=vuln,
        aliases=(),
        advisories=(),
        fix_state=FixState.FIXED,
        fixed_version="1.2.4-1",
        severity=severity,
        cvss_score=None,
        kev=kev,
        epss=None,
        epss_percentile=None,
        first_seen=seen,
        last_seen=seen,
        resolved_at=None,
    )
    risk = score(RiskInput(vulnerability=vuln, asset=asset, severity=severity, kev=kev))
    sf = ScoredFinding(finding=finding, risk=risk)
    return Action(
        id=f"{asset}/pkg{n % 7}",
        asset=AssetId(asset),
        ecosystem="Debian:12",
        package=f"pkg{n % 7}",
        binaries=(f"pkg{n % 7}",),
        installed_version="1.2.3-1",
        target_version="1.2.4-1",
        closes=(sf,),
        remaining=(),
        risk_removed=risk.score,
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Action], list[Asset], PlanPolicy]:
    windows = tuple(
        Window(
            name=f"w{i}",
            rrule=draw(st.sampled_from(RULES)),
            duration=dt.timedelta(hours=draw(st.integers(1, 6))),
            timezone=draw(st.sampled_from(ZONES)),
            selector=Selector(services=(f"s{i}",)) if draw(st.booleans()) else None,
        )
        for i in range(draw(st.integers(1, 3)))
    )
    n_assets = draw(st.integers(1, 25))
    assets = []
    for i in range(n_assets):
        assets.append(
            Asset(
                id=AssetId(f"h{i:02d}"),
                environment=draw(st.sampled_from(list(Environment))),
                criticality=draw(st.integers(1, 5)),
                service=draw(st.sampled_from([None, "s0", "s1", "s2"])),
                maintenance_window=draw(st.sampled_from([None, "w0", "w1", "nope"])),
            )
        )
    freezes = tuple(
        Freeze(
            name=f"f{i}",
            start=NOW + dt.timedelta(hours=draw(st.integers(0, 24 * 20))),
            end=NOW + dt.timedelta(hours=draw(st.integers(24 * 20 + 1, 24 * 40))),
            selector=Selector(services=("s1",)) if draw(st.booleans()) else None,
            allow_emergency=draw(st.booleans()),
        )
        for i in range(draw(st.integers(0, 2)))
    )
    actions = []
    n = 0
    for a in assets:
        for _ in range(draw(st.integers(0, 3))):
            n += 1
            actions.append(
                action(
                    a.id,
                    n,
                    draw(st.sampled_from(SEVERITIES)),
                    draw(st.booleans()),
                    draw(st.integers(0, 40)),
                )
            )
    actions = list({a.id: a for a in actions}.values())
    policy = PlanPolicy(
        windows=windows,
        freezes=freezes,
        rings=RingPolicy(
            canary=Amount(count=draw(st.integers(0, 3))),
            pilot=Amount(percent=draw(st.sampled_from([10.0, 30.0, 50.0]))),
            soak=dt.timedelta(hours=draw(st.integers(0, 72))),
        ),
        max_unavailable=draw(st.sampled_from([Amount(count=1), Amount(percent=50.0)])),
        gates=(
            GateRule(
                name="low risk",
                when=GateConditions(risk_score_below=draw(st.floats(0, 100))),
                decision=GateDecision.AUTO_APPROVE,
            ),
        ),
        horizon=dt.timedelta(days=draw(st.integers(10, 60))),
    )
    return actions, assets, policy


def occurrences(w: Window, start: dt.datetime, end: dt.datetime) -> set[tuple[dt.datetime, ...]]:
    zone = ZoneInfo(w.timezone)
    rule = rrulestr(w.rrule, dtstart=dt.datetime(2000, 1, 1, tzinfo=zone))
    lo, hi = start - dt.timedelta(days=2), end + dt.timedelta(days=2)
    return {
        (s.astimezone(dt.UTC), s.astimezone(dt.UTC) + w.duration)
        for s in rule.between(lo.astimezone(zone), hi.astimezone(zone), inc=True)
    }


def check(plan: Plan, actions: list[Action], assets: list[Asset], policy: PlanPolicy) -> None:
    fleet = {a.id: a for a in assets}
    # every action is scheduled exactly once or unscheduled with a reason
    planned = [i for c in plan.changes for i in c.action_ids]
    skipped = [u.action for u in plan.unscheduled]
    assert sorted(planned + skipped) == sorted(a.id for a in actions)
    assert all(u.message for u in plan.unscheduled)
    replicas: dict[str, int] = {}
    for a in assets:
        if a.service:
            replicas[a.service] = replicas.get(a.service, 0) + 1
    for c in plan.changes:
        asset = fleet[c.asset]
        assert c.start >= NOW
        assert c.sla_breach == (c.end > c.deadline.due)
        if c.emergency:
            assert c.gate.decision is GateDecision.REQUIRE_APPROVAL
            assert c.breach is not None
        else:
            assert c.end <= c.deadline.due
            assert not c.sla_breach
            w = policy.window(c.window or "")
            assert w is not None
            assert (c.start, c.end) in occurrences(w, c.start, c.end)
            if asset.maintenance_window is not None:
                assert w.name == asset.maintenance_window
        for f in policy.freezes:
            if f.applies(asset) and not (c.emergency and f.allow_emergency):
                assert not f.overlaps(c.start, c.end), (c.id, f.name)
        if c.gate.decision is GateDecision.AUTO_APPROVE:
            threshold = policy.gates[0].when.risk_score_below
            assert threshold is not None
            assert c.risk_score < threshold
    # max_unavailable at every instant (sweep over slot boundaries)
    for service, total in replicas.items():
        mine = [c for c in plan.changes if c.service == service]
        limit = policy.limit(service, total)
        for c in mine:
            at = c.start
            assert sum(1 for d in mine if d.start <= at < d.end) <= limit
    # ring order and soak among regular changes
    regular = [c for c in plan.changes if not c.emergency]
    for early, late in itertools.product(regular, regular):
        if early.ring.rank < late.ring.rank:
            assert late.start >= early.end + policy.rings.soak, (early.id, late.id)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_plans_never_violate_constraints(
    scenario: tuple[list[Action], list[Asset], PlanPolicy],
) -> None:
    actions, assets, policy = scenario
    plan = schedule(actions, assets, policy, NOW)
    check(plan, actions, assets, policy)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_plans_are_deterministic(scenario: tuple[list[Action], list[Asset], PlanPolicy]) -> None:
    actions, assets, policy = scenario
    first = schedule(actions, assets, policy, NOW)
    again = schedule(list(reversed(actions)), list(reversed(assets)), policy, NOW)
    assert first == again
