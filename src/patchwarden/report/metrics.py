"""Remediation metrics: time-to-patch with survival analysis, exposure, SLA, rollouts, burn-down.

Why survival analysis
    The mean time from *first seen* to *resolved* over the findings that were closed ignores
    every finding still open, and the oldest open findings are exactly the slow ones: the
    plain mean flatters the number. Here a finding still open at ``now`` is *right-censored*
    at ``now - first_seen`` (we know it took at least that long) and time-to-patch is the
    Kaplan-Meier estimate of the survival function S(t) = P(still open after t days)
    (Kaplan & Meier 1958; computed with the ``lifelines`` library's ``KaplanMeierFitter``).

    * **median** time-to-patch: the smallest t with S(t) <= 0.5 (``None`` when fewer than
      half are known to be fixed: the median is then beyond the follow-up and not estimable);
    * **restricted mean** (RMST) up to a horizon ``tau``: the area under S from 0 to tau,
      i.e. the mean time-to-patch when every finding counts as fixed at tau at the latest.
      S is held at its last value past the last observation (the usual convention).

    Both are given per severity, KEV status and environment, next to the naive mean over
    closed findings for contrast.

Everything here is pure: the inputs are :class:`FindingSpan` records (what the store knows
about each finding's life) and, for rollouts, :class:`RolloutOutcome` records; ``now`` is
always passed in.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from lifelines import KaplanMeierFitter  # type: ignore[import-untyped]

from patchwarden.model import Environment, Severity

_DAY = 86400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingSpan:
    """One finding's life as the metrics see it."""

    finding_id: int
    """The store's finding id."""
    asset: str
    """The asset."""
    package: str = ""
    """The package."""
    vulnerability: str = ""
    """Canonical vulnerability id."""
    severity: Severity = Severity.UNKNOWN
    """Severity."""
    kev: bool = False
    """Listed in CISA KEV."""
    environment: Environment = Environment.PROD
    """The asset's environment."""
    first_seen: dt.datetime
    """When a scan first found it (aware)."""
    resolved_at: dt.datetime | None = None
    """When a scan stopped finding it (None: still open)."""
    risk_score: float = 0.0
    """Its current risk score (:func:`patchwarden.risk.score`)."""
    sla_due: dt.datetime | None = None
    """Its SLA deadline (:func:`patchwarden.plan.sla.finding_deadline`); None: no SLA."""


def _days(delta: dt.timedelta) -> float:
    return delta.total_seconds() / _DAY


def span_days(span: FindingSpan, now: dt.datetime) -> tuple[float, bool]:
    """(days open, fixed?): to ``resolved_at`` when fixed, else to ``now`` (censored).

    >>> t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    >>> span_days(FindingSpan(finding_id=1, asset="a", first_seen=t0,
    ...                       resolved_at=t0 + dt.timedelta(days=3)), t0 + dt.timedelta(days=9))
    (3.0, True)
    >>> span_days(FindingSpan(finding_id=2, asset="a", first_seen=t0), t0 + dt.timedelta(days=9))
    (9.0, False)
    """
    end = span.resolved_at if span.resolved_at is not None else now
    days = _days(end - span.first_seen)
    if days < 0:
        what = "resolved_at" if span.resolved_at is not None else "now"
        raise ValueError(
            f"finding {span.finding_id}: {what} ({end.isoformat()}) is before first_seen "
            f"({span.first_seen.isoformat()})"
        )
    return days, span.resolved_at is not None


# --------------------------------------------------------------------------- Kaplan-Meier


@dataclass(frozen=True, slots=True, kw_only=True)
class SurvivalCurve:
    """A Kaplan-Meier step function: S(t) = ``survival[i]`` for ``times[i] <= t < times[i+1]``."""

    times: tuple[float, ...]
    """Step times in days, ascending, starting at 0."""
    survival: tuple[float, ...]
    """S at each step time (share still open)."""
    n: int
    """Findings."""
    events: int
    """Fixed findings (the rest are censored)."""
    median: float | None
    """Smallest t with S(t) <= 0.5; None when S never gets there (not estimable)."""

    def at(self, t: float) -> float:
        """S(t) (held at its last value past the last step).

        >>> kaplan_meier([1.0, 2.0], [True, True]).at(1.5)
        0.5
        """
        value = 1.0
        for time, s in zip(self.times, self.survival, strict=True):
            if time > t:
                break
            value = s
        return value

    def restricted_mean(self, tau: float) -> float:
        """Area under S from 0 to ``tau`` (RMST, days).

        >>> kaplan_meier([1.0, 3.0], [True, False]).restricted_mean(4.0)
        2.5
        """
        if tau < 0:
            raise ValueError(f"restricted mean horizon {tau} is negative")
        area = 0.0
        edges = [*self.times, math.inf]
        for i, s in enumerate(self.survival):
            lo, hi = edges[i], min(edges[i + 1], tau)
            if hi > lo:
                area += s * (hi - lo)
        return area


def kaplan_meier(durations: Sequence[float], observed: Sequence[bool]) -> SurvivalCurve:
    """Kaplan-Meier estimate (``lifelines.KaplanMeierFitter``) of durations, censored where
    ``observed`` is False.

    >>> curve = kaplan_meier([2, 2, 2, 4], [True, True, False, True])
    >>> curve.times, curve.survival, curve.median
    ((0.0, 2.0, 4.0), (1.0, 0.5, 0.0), 2.0)
    """
    if len(durations) != len(observed):
        raise ValueError(f"{len(durations)} durations but {len(observed)} event flags")
    if not durations:
        return SurvivalCurve(times=(0.0,), survival=(1.0,), n=0, events=0, median=None)
    bad = [d for d in durations if not math.isfinite(d) or d < 0]
    if bad:
        raise ValueError(f"durations must be finite and non-negative, got {bad[0]!r}")
    kmf = KaplanMeierFitter().fit([float(d) for d in durations], [bool(o) for o in observed])
    sf = kmf.survival_function_
    times = tuple(float(x) for x in sf.index)
    survival = tuple(float(x) for x in sf.iloc[:, 0])
    if times[0] > 0:  # lifelines starts at the first event time when no duration is 0
        times, survival = (0.0, *times), (1.0, *survival)
    # The median is read off the step function (not ``kmf.median_survival_time_``, which is
    # inf when the curve's only step is at t = 0, e.g. half of the findings fixed on day 0).
    median = next((t for t, s in zip(times, survival, strict=True) if s <= 0.5 + 1e-12), None)
    return SurvivalCurve(
        times=times,
        survival=survival,
        n=len(durations),
        events=sum(1 for o in observed if o),
        median=median,
    )


# --------------------------------------------------------------------------- time to patch


class Dimension(StrEnum):
    """What a metric row is grouped by."""

    ALL = "all"
    SEVERITY = "severity"
    KEV = "kev"
    ENVIRONMENT = "environment"


_GROUPERS: dict[Dimension, Callable[[FindingSpan], str]] = {
    Dimension.ALL: lambda s: "all",
    Dimension.SEVERITY: lambda s: s.severity.value,
    Dimension.KEV: lambda s: "kev" if s.kev else "not kev",
    Dimension.ENVIRONMENT: lambda s: s.environment.value,
}


def _group_order(dimension: Dimension, value: str) -> tuple[int, str]:
    if dimension is Dimension.SEVERITY:
        return (-Severity(value).rank, value)
    if dimension is Dimension.ENVIRONMENT:
        return ([e.value for e in Environment].index(value), value)
    return (0, value)


def groups(spans: Iterable[FindingSpan]) -> list[tuple[Dimension, str, list[FindingSpan]]]:
    """The spans grouped by every :class:`Dimension` (all, then each severity, KEV, env)."""
    items = list(spans)
    out: list[tuple[Dimension, str, list[FindingSpan]]] = []
    for dimension, key in _GROUPERS.items():
        by: dict[str, list[FindingSpan]] = defaultdict(list)
        for s in items:
            by[key(s)].append(s)
        for value in sorted(by, key=lambda v, d=dimension: _group_order(d, v)):  # type: ignore[misc]
            out.append((dimension, value, by[value]))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeToPatch:
    """Time-to-patch of one group of findings (days)."""

    dimension: Dimension
    """Grouped by."""
    group: str
    """The group's value (``critical``, ``kev``, ``prod``, ``all``)."""
    findings: int
    """Findings in the group."""
    fixed: int
    """Of which fixed (events)."""
    open: int
    """Of which still open (censored)."""
    median_days: float | None
    """Kaplan-Meier median; None when not estimable (fewer than half known fixed)."""
    restricted_mean_days: float
    """Kaplan-Meier restricted mean up to ``horizon_days``."""
    horizon_days: float
    """The restriction horizon tau."""
    naive_mean_days: float | None
    """Plain mean over fixed findings only (biased low; shown for contrast)."""
    curve: SurvivalCurve
    """The Kaplan-Meier curve."""


def time_to_patch(
    spans: Sequence[FindingSpan], now: dt.datetime, *, horizon_days: float = 365.0
) -> list[TimeToPatch]:
    """Time-to-patch per group (:func:`groups`), open findings censored at ``now``.

    The restricted mean uses tau = min(``horizon_days``, the longest follow-up of any
    finding), the same tau for every group so rows compare.
    """
    days = {s.finding_id: span_days(s, now) for s in spans}
    follow_up = max((d for d, _ in days.values()), default=0.0)
    tau = min(horizon_days, follow_up)
    rows = []
    for dimension, value, members in groups(spans):
        durations = [days[s.finding_id][0] for s in members]
        observed = [days[s.finding_id][1] for s in members]
        curve = kaplan_meier(durations, observed)
        closed = [d for d, o in zip(durations, observed, strict=True) if o]
        rows.append(
            TimeToPatch(
                dimension=dimension,
                group=value,
                findings=len(members),
                fixed=len(closed),
                open=len(members) - len(closed),
                median_days=curve.median,
                restricted_mean_days=curve.restricted_mean(tau),
                horizon_days=tau,
                naive_mean_days=sum(closed) / len(closed) if closed else None,
                curve=curve,
            )
        )
    return rows


# --------------------------------------------------------------------------- exposure


def exposure_days(spans: Iterable[FindingSpan], now: dt.datetime) -> float:
    """Sum of the days each finding stayed open (to ``now`` for open ones).

    >>> t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    >>> spans = [FindingSpan(finding_id=1, asset="a", first_seen=t0,
    ...                      resolved_at=t0 + dt.timedelta(days=2)),
    ...          FindingSpan(finding_id=2, asset="a", first_seen=t0 + dt.timedelta(days=1))]
    >>> exposure_days(spans, t0 + dt.timedelta(days=5))
    6.0
    """
    return sum(span_days(s, now)[0] for s in spans)


@dataclass(frozen=True, slots=True, kw_only=True)
class Exposure:
    """Exposure-days of one group."""

    dimension: Dimension
    group: str
    findings: int
    open: int
    exposure_days: float


def exposure_by_group(spans: Sequence[FindingSpan], now: dt.datetime) -> list[Exposure]:
    """:func:`exposure_days` per group (:func:`groups`)."""
    return [
        Exposure(
            dimension=dimension,
            group=value,
            findings=len(members),
            open=sum(1 for s in members if s.resolved_at is None),
            exposure_days=exposure_days(members, now),
        )
        for dimension, value, members in groups(spans)
    ]


# --------------------------------------------------------------------------- SLA


class SlaStatus(StrEnum):
    """How one finding stands against its SLA deadline."""

    MET = "met"
    """Fixed at or before the deadline."""
    BREACHED = "breached"
    """Fixed after the deadline."""
    OVERDUE = "overdue"
    """Still open and past the deadline (counts as a breach)."""
    PENDING = "pending"
    """Still open, deadline not reached yet (not counted)."""
    NO_SLA = "no_sla"
    """No deadline known (not counted)."""


def sla_status(span: FindingSpan, now: dt.datetime) -> SlaStatus:
    """:class:`SlaStatus` of one finding at ``now``.

    >>> t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    >>> due = t0 + dt.timedelta(days=7)
    >>> sla_status(FindingSpan(finding_id=1, asset="a", first_seen=t0, sla_due=due),
    ...            t0 + dt.timedelta(days=8)).value
    'overdue'
    """
    if span.sla_due is None:
        return SlaStatus.NO_SLA
    if span.resolved_at is not None:
        return SlaStatus.MET if span.resolved_at <= span.sla_due else SlaStatus.BREACHED
    return SlaStatus.OVERDUE if now > span.sla_due else SlaStatus.PENDING


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaCompliance:
    """SLA compliance of one group: met / (met + breached + overdue)."""

    dimension: Dimension
    group: str
    met: int
    breached: int
    overdue: int
    pending: int
    no_sla: int

    @property
    def decided(self) -> int:
        """Findings whose SLA outcome is known (met, breached or overdue)."""
        return self.met + self.breached + self.overdue

    @property
    def rate(self) -> float | None:
        """Share met among the decided; None when nothing is decided yet."""
        return self.met / self.decided if self.decided else None


def sla_compliance(spans: Sequence[FindingSpan], now: dt.datetime) -> list[SlaCompliance]:
    """SLA compliance per group (:func:`groups`)."""
    out = []
    for dimension, value, members in groups(spans):
        counts = dict.fromkeys(SlaStatus, 0)
        for s in members:
            counts[sla_status(s, now)] += 1
        out.append(
            SlaCompliance(
                dimension=dimension,
                group=value,
                met=counts[SlaStatus.MET],
                breached=counts[SlaStatus.BREACHED],
                overdue=counts[SlaStatus.OVERDUE],
                pending=counts[SlaStatus.PENDING],
                no_sla=counts[SlaStatus.NO_SLA],
            )
        )
    return out


# --------------------------------------------------------------------------- rollouts


class RolloutStatus(StrEnum):
    """Final outcome of one change's rollout on one asset."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """Applied and failed; left as is (or fixed by hand)."""
    ROLLED_BACK = "rolled_back"
    """Failed and was rolled back."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutOutcome:
    """One change's rollout result on one asset."""

    change_id: str
    asset: str
    status: RolloutStatus
    at: dt.datetime
    ring: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutRates:
    """Patch success and rollback rates (``None`` rates: no data)."""

    total: int
    succeeded: int
    failed: int
    rolled_back: int

    @property
    def success_rate(self) -> float | None:
        """Succeeded / total; None without outcomes."""
        return self.succeeded / self.total if self.total else None

    @property
    def rollback_rate(self) -> float | None:
        """Rolled back / total; None without outcomes."""
        return self.rolled_back / self.total if self.total else None


def rollout_rates(outcomes: Iterable[RolloutOutcome]) -> RolloutRates:
    """Count outcomes by status.

    >>> rollout_rates([]).success_rate is None
    True
    """
    counts = dict.fromkeys(RolloutStatus, 0)
    for o in outcomes:
        counts[o.status] += 1
    return RolloutRates(
        total=sum(counts.values()),
        succeeded=counts[RolloutStatus.SUCCEEDED],
        failed=counts[RolloutStatus.FAILED],
        rolled_back=counts[RolloutStatus.ROLLED_BACK],
    )


# --------------------------------------------------------------------------- burn-down


@dataclass(frozen=True, slots=True, kw_only=True)
class BurnDownPoint:
    """Open findings and their total risk at the end of one day (UTC)."""

    day: dt.date
    open_findings: int
    open_kev: int
    open_risk: float


def burn_down(
    spans: Sequence[FindingSpan], now: dt.datetime, *, start: dt.date | None = None
) -> list[BurnDownPoint]:
    """Open risk per day from the first ``first_seen`` (or ``start``) to ``now``'s day.

    A finding counts on day d when ``first_seen`` < end of d (midnight UTC) < ``resolved_at``.
    The risk of a finding is its *current* score (the store keeps no score history), so the
    curve shows how today's view of risk was reduced over time.

    >>> t0 = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)
    >>> pts = burn_down([FindingSpan(finding_id=1, asset="a", first_seen=t0, risk_score=2.0,
    ...                              resolved_at=t0 + dt.timedelta(days=1))],
    ...                 t0 + dt.timedelta(days=2))
    >>> [(p.day.isoformat(), p.open_findings, p.open_risk) for p in pts]
    [('2025-01-01', 1, 2.0), ('2025-01-02', 0, 0.0), ('2025-01-03', 0, 0.0)]
    """
    if not spans and start is None:
        return []
    first = start or min(s.first_seen.astimezone(dt.UTC).date() for s in spans)
    last = now.astimezone(dt.UTC).date()
    size = (last - first).days + 1
    if size <= 0:
        return []
    # Difference arrays: a finding is open on days [opened, closed) (indices from ``first``).
    d_count = [0] * (size + 1)
    d_kev = [0] * (size + 1)
    d_risk = [0.0] * (size + 1)
    for s in spans:
        opened = max((s.first_seen.astimezone(dt.UTC).date() - first).days, 0)
        if s.resolved_at is None:
            closed = size
        else:
            r = s.resolved_at.astimezone(dt.UTC)
            ceil_day = r.date() if r.time() == dt.time() else r.date() + dt.timedelta(days=1)
            closed = min(max((ceil_day - first).days - 1, 0), size)
        if opened >= closed:
            continue
        for arr, value in ((d_count, 1), (d_kev, int(s.kev))):
            arr[opened] += value
            arr[closed] -= value
        d_risk[opened] += s.risk_score
        d_risk[closed] -= s.risk_score
    points = []
    count = kev = 0
    risk = 0.0
    for i in range(size):
        count += d_count[i]
        kev += d_kev[i]
        risk += d_risk[i]
        points.append(
            BurnDownPoint(
                day=first + dt.timedelta(days=i),
                open_findings=count,
                open_kev=kev,
                open_risk=round(risk, 9) if count else 0.0,
            )
        )
    return points
