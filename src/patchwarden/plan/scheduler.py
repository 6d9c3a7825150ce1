"""The scheduler: actions + fleet + policy + now -> a :class:`Plan` of changes in windows.

Algorithm (a deterministic greedy, earliest-deadline-first within rings):

1. Targets follow ``policy.target`` (:func:`~patchwarden.plan.targets.retarget`).
2. Each asset's actions become **one change** (one disruption per asset; the change's deadline
   is the earliest of its actions', so the most urgent finding sets the pace for the batch).
3. Assets with changes are split into rings (:func:`~patchwarden.plan.rings.assign_rings`).
4. Rings are planned in order canary, pilot, broad. A ring may start no earlier than the end
   of the last slot of every earlier ring plus ``soak``. Within a ring changes are placed most
   urgent first (deadline, then highest risk, then asset id).
5. A change is placed in the **earliest occurrence** of its asset's window that starts at or
   after the ring's start, overlaps no freeze covering the asset, and keeps the asset's
   service within ``max_unavailable`` (counting every already placed change of the service
   whose slot overlaps -- a conservative count, so no instant ever has more replicas down).
   The slot is the whole occurrence.
6. If that occurrence ends after the deadline -- or there is none in the horizon but the
   deadline falls inside it, or the deadline has already passed -- no window can meet the
   SLA: the change becomes an **emergency change** with a breach reason, placed at the
   earliest instant from ``now`` that respects ``max_unavailable`` and freezes (except those
   with ``allow_emergency``), lasting ``emergency_duration``; it ignores windows and rings and
   always requires approval.
7. Each change passes the gates (:func:`~patchwarden.plan.gates.evaluate_gate`).

Guarantees (checked by the property tests in ``tests/property/test_plan_properties.py``):
every action is in exactly one change or in ``unscheduled`` with a reason; every regular slot
is an occurrence of the asset's window; no slot overlaps a freeze that covers the asset
(emergency: unless the freeze allows emergencies); at no instant are more replicas of a service
in changes than ``max_unavailable`` allows; regular changes of a later ring start no earlier
than ``soak`` after every earlier ring's regular changes end; ``sla_breach`` is exactly
"slot end after deadline"; the same input gives the same plan.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from patchwarden.model import Asset, AssetId, KevEntry
from patchwarden.plan.amount import Amount
from patchwarden.plan.changes import (
    Disruption,
    MetadataHook,
    UpgradeLevel,
    change_disruption,
    change_level,
)
from patchwarden.plan.gates import GateDecision, GateFacts, GateOutcome, GateRule, evaluate_gate
from patchwarden.plan.rings import Ring, RingPolicy, assign_rings
from patchwarden.plan.sla import Deadline, SlaPolicy, action_deadline
from patchwarden.plan.targets import TargetMode, retarget
from patchwarden.plan.windows import Freeze, Window
from patchwarden.prioritize import Action


def _default_windows() -> tuple[Window, ...]:
    return (
        Window(
            name="default",
            rrule="FREQ=DAILY;BYHOUR=2;BYMINUTE=0",
            duration=dt.timedelta(hours=4),
            timezone="UTC",
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanPolicy:
    """Everything the scheduler takes from the policy file."""

    slas: SlaPolicy = field(default_factory=SlaPolicy)
    """Deadlines."""
    windows: tuple[Window, ...] = field(default_factory=_default_windows)
    """Maintenance windows, in file order (the first matching selector wins)."""
    freezes: tuple[Freeze, ...] = ()
    """Freeze periods."""
    rings: RingPolicy = field(default_factory=RingPolicy)
    """Ring sizes and soak."""
    max_unavailable: Amount = field(default_factory=lambda: Amount(percent=25.0))
    """Default per service; at least 1 replica may always be down."""
    max_unavailable_by_service: Mapping[str, Amount] = field(default_factory=dict)
    """Per-service overrides."""
    gates: tuple[GateRule, ...] = ()
    """Gate rules in order (none: everything requires approval)."""
    target: TargetMode = TargetMode.SMALLEST_FIX
    """How target versions are chosen."""
    horizon: dt.timedelta = dt.timedelta(days=180)
    """How far ahead the scheduler looks for slots."""
    emergency_duration: dt.timedelta = dt.timedelta(hours=2)
    """Length of an emergency change's slot."""

    def window(self, name: str) -> Window | None:
        """The window called ``name``."""
        return next((w for w in self.windows if w.name == name), None)

    def limit(self, service: str, replicas: int) -> int:
        """How many replicas of ``service`` (of ``replicas``) may be in changes at once (>= 1)."""
        amount = self.max_unavailable_by_service.get(service, self.max_unavailable)
        return amount.of(replicas, at_least=1)


class UnscheduledReason(StrEnum):
    """Why an action is in no change."""

    NO_WINDOW = "no_window"
    """The asset names no window and no window's selector matches it."""
    UNKNOWN_WINDOW = "unknown_window"
    """The asset names a window the policy does not define."""
    NO_SLOT = "no_slot"
    """No usable occurrence in the horizon (frozen or full) and the deadline is beyond it."""
    NO_EMERGENCY_SLOT = "no_emergency_slot"
    """The SLA cannot be met and no emergency slot is free of freezes within the horizon."""


class BreachReason(StrEnum):
    """Why a change had to become an emergency change."""

    DEADLINE_PASSED = "deadline_passed"
    """The deadline was already past when planning."""
    NO_WINDOW_BEFORE_DEADLINE = "no_window_before_deadline"
    """No usable window occurrence (after rings, freezes, capacity) ends by the deadline."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One asset's batch of upgrades in one slot."""

    id: str
    """``<asset>@<slot start, UTC, YYYYMMDDTHHMMZ>``."""
    asset: AssetId
    """The asset."""
    service: str | None
    """Its service (max_unavailable is counted per service)."""
    actions: tuple[Action, ...]
    """The upgrades, highest risk removed first."""
    start: dt.datetime
    """Slot start (UTC)."""
    end: dt.datetime
    """Slot end (UTC)."""
    window: str | None
    """The window the slot is an occurrence of (None for an emergency change)."""
    ring: Ring
    """The asset's ring."""
    wave: int
    """1-based order of (ring, slot start) among regular changes; 0 for emergency changes."""
    upgrade_level: UpgradeLevel
    """Largest upgrade level of the actions."""
    disruption: Disruption
    """Restart or reboot."""
    risk_score: float
    """Highest risk score among the findings closed."""
    risk_removed: float
    """Sum of the actions' risk removed."""
    deadline: Deadline
    """The earliest SLA deadline of its actions."""
    sla_breach: bool
    """The slot ends after the deadline."""
    emergency: bool
    """An emergency change (no window could meet the SLA)."""
    breach: BreachReason | None
    """Why it is an emergency change."""
    breach_message: str
    """Human explanation of the breach ("" when none)."""
    gate: GateOutcome
    """Gate decision and the rule that made it."""

    @property
    def action_ids(self) -> tuple[str, ...]:
        """Ids of the actions."""
        return tuple(a.id for a in self.actions)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unscheduled:
    """An action the plan does not schedule, and why."""

    action: str
    """The action id."""
    asset: AssetId
    """Its asset."""
    reason: UnscheduledReason
    """Why."""
    message: str
    """Human explanation."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanSummary:
    """Counts for the plan's header."""

    actions: int
    """Actions given."""
    changes: int
    """Changes planned."""
    scheduled_actions: int
    """Actions in some change."""
    unscheduled_actions: int
    """Actions in ``unscheduled``."""
    emergency: int
    """Emergency changes."""
    sla_breaches: int
    """Changes whose slot ends after their deadline."""
    auto_approved: int
    """Changes the gates auto-approved."""
    require_approval: int
    """Changes waiting for a human."""
    by_ring: Mapping[Ring, int]
    """Changes per ring."""
    waves: int
    """Number of regular waves."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A remediation plan."""

    generated_at: dt.datetime
    """The ``now`` it was planned at (UTC)."""
    changes: tuple[Change, ...]
    """Changes by slot start, then asset."""
    unscheduled: tuple[Unscheduled, ...]
    """Actions not planned, with reasons (by asset, action)."""
    summary: PlanSummary
    """Counts."""


def _asset_window(asset: Asset, policy: PlanPolicy) -> Window | UnscheduledReason:
    if asset.maintenance_window is not None:
        found = policy.window(asset.maintenance_window)
        return found if found is not None else UnscheduledReason.UNKNOWN_WINDOW
    for w in policy.windows:
        if w.selector is not None and w.selector.matches(asset):
            return w
    if len(policy.windows) == 1 and policy.windows[0].selector is None:
        return policy.windows[0]
    return UnscheduledReason.NO_WINDOW


def _kind(actions: Iterable[Action]) -> str:
    ecosystems = sorted({a.ecosystem for a in actions})
    os_kinds = [e for e in ecosystems if ":" in e]
    return "+".join(os_kinds or ecosystems)


class _Capacity:
    """Placed slots per service; counts overlaps conservatively."""

    def __init__(self) -> None:
        self.slots: dict[str, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)

    def fits(self, service: str | None, start: dt.datetime, end: dt.datetime, limit: int) -> bool:
        if service is None:
            return True
        busy = 0
        for s, e in self.slots[service]:
            if s < end and start < e:
                busy += 1
                if busy >= limit:
                    return False
        return True

    def add(self, service: str | None, start: dt.datetime, end: dt.datetime) -> None:
        if service is not None:
            self.slots[service].append((start, end))


@dataclass(slots=True)
class _Pending:
    asset: Asset
    actions: tuple[Action, ...]
    deadline: Deadline
    risk: float
    ring: Ring = Ring.BROAD


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"'now' must be timezone-aware, got {value.isoformat()!r}")
    return value.astimezone(dt.UTC)


def schedule(
    actions: Iterable[Action],
    assets: Iterable[Asset],
    policy: PlanPolicy,
    now: dt.datetime,
    *,
    kev: Mapping[str, KevEntry] | None = None,
    predicted_failure: Mapping[str, float] | None = None,
    metadata: MetadataHook | None = None,
    canary: Collection[AssetId] = (),
) -> Plan:
    """Plan ``actions`` on the fleet ``assets`` (algorithm and guarantees: module docstring).

    ``assets`` is the whole fleet (replica counts for ``max_unavailable`` come from it; an
    action's asset missing from it is taken with default context). ``kev`` maps CVE ids to
    KEV entries (``Store.kev_entries``); ``predicted_failure`` maps action ids to a failure
    probability (absent: no prediction); ``metadata`` is the package-metadata restart hook;
    ``canary`` names assets placed in the canary ring on top of the ring assignment (the
    policy's ``learn.canary_threshold``: changes likely to fail go first, to a larger canary).
    """
    now = _utc(now)
    horizon_end = now + policy.horizon
    fleet = {a.id: a for a in sorted(assets, key=lambda a: a.id)}
    items = retarget(sorted(actions, key=lambda a: a.id), policy.target)
    by_asset: dict[AssetId, list[Action]] = defaultdict(list)
    for a in items:
        by_asset[a.asset].append(a)
        if a.asset not in fleet:
            fleet[a.asset] = Asset(id=a.asset)
    replicas: dict[str, int] = defaultdict(int)
    for asset in fleet.values():
        if asset.service is not None:
            replicas[asset.service] += 1

    pending: list[_Pending] = []
    for asset_id in sorted(by_asset):
        group = tuple(
            sorted(by_asset[asset_id], key=lambda a: (-a.risk_removed, -a.ssvc.rank, a.id))
        )
        deadline = min(
            (action_deadline(a, policy.slas, kev) for a in group),
            key=lambda d: (d.due, d.vulnerability),
        )
        risk = max((s.risk.score for a in group for s in a.closes), default=0.0)
        pending.append(_Pending(fleet[asset_id], group, deadline, risk))
    rings = assign_rings(
        [p.asset for p in pending], {p.asset.id: _kind(p.actions) for p in pending}, policy.rings
    )
    for p in pending:
        p.ring = Ring.CANARY if p.asset.id in canary else rings[p.asset.id]

    occurrences: dict[str, tuple[list[dt.datetime], list[dt.datetime]]] = {}

    def slots_of(w: Window) -> tuple[list[dt.datetime], list[dt.datetime]]:
        if w.name not in occurrences:
            occ = [(s, e) for s, e in w.occurrences(now, horizon_end) if s >= now]
            occurrences[w.name] = ([s for s, _ in occ], [e for _, e in occ])
        return occurrences[w.name]

    capacity = _Capacity()
    placed: list[tuple[_Pending, dt.datetime, dt.datetime, Window | None, BreachReason | None]]
    placed = []
    unscheduled: list[Unscheduled] = []

    def skip(p: _Pending, reason: UnscheduledReason, message: str) -> None:
        unscheduled.extend(
            Unscheduled(action=a.id, asset=p.asset.id, reason=reason, message=message)
            for a in p.actions
        )

    def emergency(
        p: _Pending, limit: int, freezes: list[Freeze]
    ) -> tuple[dt.datetime, dt.datetime] | None:
        blocking = [f for f in freezes if not f.allow_emergency]
        service = p.asset.service
        candidates = {now}
        candidates.update(f.end for f in blocking if f.end > now)
        if service is not None:
            candidates.update(e for _, e in capacity.slots[service] if e > now)
        for start in sorted(candidates):
            end = start + policy.emergency_duration
            if start >= horizon_end:
                break
            if any(f.overlaps(start, end) for f in blocking):
                continue
            if capacity.fits(service, start, end, limit):
                return start, end
        return None

    gate = now
    for ring in Ring:
        members = sorted(
            (p for p in pending if p.ring is ring),
            key=lambda p: (p.deadline.due, -p.risk, p.asset.id),
        )
        ring_end: dt.datetime | None = None
        for p in members:
            asset = p.asset
            limit = policy.limit(asset.service, replicas[asset.service]) if asset.service else 1
            freezes = [f for f in policy.freezes if f.applies(asset)]
            window = _asset_window(asset, policy)
            if isinstance(window, UnscheduledReason):
                named = asset.maintenance_window
                skip(
                    p,
                    window,
                    f"asset {asset.id!r} names window {named!r}, which the policy does not define"
                    if window is UnscheduledReason.UNKNOWN_WINDOW
                    else f"asset {asset.id!r} has no maintenance window (none named, no selector"
                    " matches)",
                )
                continue
            breach: BreachReason | None = None
            slot: tuple[dt.datetime, dt.datetime] | None = None
            if p.deadline.due <= now:
                breach = BreachReason.DEADLINE_PASSED
            else:
                starts, ends = slots_of(window)
                for i in range(bisect.bisect_left(starts, gate), len(starts)):
                    s, e = starts[i], ends[i]
                    if any(f.overlaps(s, e) for f in freezes):
                        continue
                    if capacity.fits(asset.service, s, e, limit):
                        slot = (s, e)
                        break
                if slot is not None and slot[1] > p.deadline.due:
                    breach, slot = BreachReason.NO_WINDOW_BEFORE_DEADLINE, None
                elif slot is None and p.deadline.due < horizon_end:
                    breach = BreachReason.NO_WINDOW_BEFORE_DEADLINE
            if breach is not None:
                slot = emergency(p, limit, freezes)
                if slot is None:
                    skip(
                        p,
                        UnscheduledReason.NO_EMERGENCY_SLOT,
                        f"the sla deadline {p.deadline.due.isoformat()} cannot be met and no"
                        f" emergency slot is free of freezes before {horizon_end.isoformat()}",
                    )
                    continue
                capacity.add(asset.service, *slot)
                placed.append((p, slot[0], slot[1], None, breach))
                continue
            if slot is None:
                skip(
                    p,
                    UnscheduledReason.NO_SLOT,
                    f"no free, unfrozen occurrence of window {window.name!r} between"
                    f" {gate.isoformat()} and {horizon_end.isoformat()}",
                )
                continue
            capacity.add(asset.service, *slot)
            placed.append((p, slot[0], slot[1], window, None))
            ring_end = slot[1] if ring_end is None else max(ring_end, slot[1])
        if ring_end is not None:
            gate = max(gate, ring_end + policy.rings.soak)

    waves = sorted({(s, p.ring.rank) for p, s, _, w, _ in placed if w is not None})
    wave_of = {key: i + 1 for i, key in enumerate(waves)}
    changes = []
    for p, start, end, window_used, breach in placed:
        failure = _combined_failure(p.actions, predicted_failure)
        level = change_level(p.actions)
        disruption = change_disruption(p.actions, metadata)
        facts = GateFacts(
            environment=p.asset.environment,
            upgrade_level=level,
            disruption=disruption,
            risk_score=p.risk,
            kev=any(a.kev for a in p.actions),
            predicted_failure=failure,
            emergency=breach is not None,
        )
        changes.append(
            Change(
                id=f"{p.asset.id}@{start:%Y%m%dT%H%MZ}",
                asset=p.asset.id,
                service=p.asset.service,
                actions=p.actions,
                start=start,
                end=end,
                window=window_used.name if window_used is not None else None,
                ring=p.ring,
                wave=0 if window_used is None else wave_of[(start, p.ring.rank)],
                upgrade_level=level,
                disruption=disruption,
                risk_score=p.risk,
                risk_removed=sum(a.risk_removed for a in p.actions),
                deadline=p.deadline,
                sla_breach=end > p.deadline.due,
                emergency=breach is not None,
                breach=breach,
                breach_message=_breach_message(breach, p.deadline),
                gate=evaluate_gate(policy.gates, facts),
            )
        )
    changes.sort(key=lambda c: (c.start, c.asset))
    unscheduled.sort(key=lambda u: (u.asset, u.action))
    return Plan(
        generated_at=now,
        changes=tuple(changes),
        unscheduled=tuple(unscheduled),
        summary=_summary(len(items), changes, unscheduled, len(waves)),
    )


def _combined_failure(
    actions: tuple[Action, ...], predicted: Mapping[str, float] | None
) -> float | None:
    if predicted is None or any(a.id not in predicted for a in actions):
        return None
    ok = 1.0
    for a in actions:
        ok *= 1.0 - predicted[a.id]
    return 1.0 - ok


def _breach_message(breach: BreachReason | None, deadline: Deadline) -> str:
    due = deadline.due.isoformat()
    match breach:
        case None:
            return ""
        case BreachReason.DEADLINE_PASSED:
            return (
                f"the sla deadline {due} ({deadline.basis.value}, {deadline.vulnerability})"
                " has passed"
            )
        case BreachReason.NO_WINDOW_BEFORE_DEADLINE:
            return (
                f"no maintenance window slot ends by the sla deadline {due}"
                f" ({deadline.basis.value}, {deadline.vulnerability})"
            )


def _summary(
    actions: int, changes: list[Change], unscheduled: list[Unscheduled], waves: int
) -> PlanSummary:
    by_ring: dict[Ring, int] = dict.fromkeys(Ring, 0)
    for c in changes:
        by_ring[c.ring] += 1
    return PlanSummary(
        actions=actions,
        changes=len(changes),
        scheduled_actions=sum(len(c.actions) for c in changes),
        unscheduled_actions=len(unscheduled),
        emergency=sum(c.emergency for c in changes),
        sla_breaches=sum(c.sla_breach for c in changes),
        auto_approved=sum(c.gate.decision is GateDecision.AUTO_APPROVE for c in changes),
        require_approval=sum(c.gate.decision is GateDecision.REQUIRE_APPROVAL for c in changes),
        by_ring=by_ring,
        waves=waves,
    )


__all__ = [
    "BreachReason",
    "Change",
    "Plan",
    "PlanPolicy",
    "PlanSummary",
    "Unscheduled",
    "UnscheduledReason",
    "schedule",
]
