"""Report metrics against hand-computed case tables, and lifelines' Kaplan-Meier against an
independent product-limit implementation (the test oracle) on random data."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchwarden.model import Environment, Severity
from patchwarden.report.metrics import (
    Dimension,
    FindingSpan,
    RolloutOutcome,
    RolloutStatus,
    burn_down,
    exposure_days,
    kaplan_meier,
    rollout_rates,
    sla_compliance,
    sla_status,
    span_days,
    time_to_patch,
)

CASES: dict[str, list[dict[str, Any]]] = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "report" / "metric_cases.json").read_text()
)
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def _at(days: float | None) -> dt.datetime | None:
    return None if days is None else T0 + dt.timedelta(days=days)


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [str(c["description"]) for c in cases]


def oracle_km(durations: list[float], observed: list[bool]) -> list[tuple[float, float]]:
    """Product-limit estimator written out directly: S(t) = prod over event times t_i <= t of
    (1 - d_i / n_i); events at a time come before censorings at the same time."""
    steps = [(0.0, 1.0)]
    s = 1.0
    for t in sorted(set(durations)):
        at_risk = sum(1 for d in durations if d >= t)
        deaths = sum(1 for d, o in zip(durations, observed, strict=True) if d == t and o)
        s *= 1 - deaths / at_risk
        if t == 0.0:
            steps[0] = (0.0, s)
        else:
            steps.append((t, s))
    return steps


def oracle_median(steps: list[tuple[float, float]]) -> float | None:
    return next((t for t, s in steps if s <= 0.5 + 1e-12), None)


@pytest.mark.parametrize("case", CASES["kaplan_meier"], ids=_ids(CASES["kaplan_meier"]))
def test_kaplan_meier_case_table(case: dict[str, Any]) -> None:
    inp, exp = case["input"], case["expected"]
    curve = kaplan_meier(inp["durations"], inp["observed"])
    assert list(curve.times) == pytest.approx(exp["times"])
    assert list(curve.survival) == pytest.approx(exp["survival"])
    assert curve.median == (None if exp["median"] is None else pytest.approx(exp["median"]))
    assert curve.restricted_mean(inp["tau"]) == pytest.approx(exp["rmst"])
    assert curve.n == len(inp["durations"])
    assert curve.events == sum(inp["observed"])
    # the oracle agrees with the hand-computed table too
    steps = oracle_km([float(d) for d in inp["durations"]], inp["observed"])
    assert [s for _, s in steps] == pytest.approx(exp["survival"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=30), st.booleans()), min_size=1, max_size=40
    )
)
def test_lifelines_matches_oracle(data: list[tuple[int, bool]]) -> None:
    durations = [float(d) for d, _ in data]
    observed = [o for _, o in data]
    curve = kaplan_meier(durations, observed)
    steps = oracle_km(durations, observed)
    assert list(curve.times) == pytest.approx([t for t, _ in steps])
    assert list(curve.survival) == pytest.approx([s for _, s in steps])
    assert curve.median == (
        None if oracle_median(steps) is None else pytest.approx(oracle_median(steps))
    )
    tau = max(durations) + 1
    area = sum(
        s * (min(nt, tau) - t)
        for (t, s), nt in zip(steps, [t for t, _ in steps[1:]] + [tau], strict=True)
    )
    assert curve.restricted_mean(tau) == pytest.approx(area)


def test_kaplan_meier_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2 durations but 1 event flags"):
        kaplan_meier([1.0, 2.0], [True])
    with pytest.raises(ValueError, match="non-negative, got -1"):
        kaplan_meier([-1.0], [True])
    with pytest.raises(ValueError, match="horizon -1 is negative"):
        kaplan_meier([1.0], [True]).restricted_mean(-1)


def _spans(spec: list[dict[str, Any]]) -> list[FindingSpan]:
    out = []
    for i, s in enumerate(spec, start=1):
        first = _at(s["first_seen"])
        assert first is not None
        sla = s["sla_days"]
        out.append(
            FindingSpan(
                finding_id=i,
                asset="a",
                first_seen=first,
                resolved_at=_at(s["resolved_at"]),
                sla_due=None if sla is None else first + dt.timedelta(days=sla),
            )
        )
    return out


@pytest.mark.parametrize("case", CASES["exposure_and_sla"], ids=_ids(CASES["exposure_and_sla"]))
def test_exposure_and_sla_case_table(case: dict[str, Any]) -> None:
    inp, exp = case["input"], case["expected"]
    now = _at(inp["now"])
    assert now is not None
    spans = _spans(inp["spans"])
    assert exposure_days(spans, now) == pytest.approx(exp["exposure_days"])
    assert [sla_status(s, now).value for s in spans] == exp["statuses"]
    rows = sla_compliance(spans, now)
    if not spans:
        assert rows == []
        return
    overall = next(r for r in rows if r.dimension is Dimension.ALL)
    got = {k: getattr(overall, k) for k in ("met", "breached", "overdue", "pending", "no_sla")}
    assert got == {k: exp[k] for k in got}
    assert overall.rate == (None if exp["rate"] is None else pytest.approx(exp["rate"]))


def test_resolved_before_first_seen_names_the_finding() -> None:
    bad = FindingSpan(finding_id=42, asset="a", first_seen=T0, resolved_at=_at(-1))
    with pytest.raises(ValueError, match=r"finding 42: resolved_at .* is before first_seen"):
        span_days(bad, T0)


def test_time_to_patch_groups_and_censoring_beats_naive_mean() -> None:
    now = _at(100)
    assert now is not None
    spans = [
        FindingSpan(
            finding_id=1,
            asset="a",
            severity=Severity.CRITICAL,
            kev=True,
            first_seen=T0,
            resolved_at=_at(2),
        ),
        FindingSpan(
            finding_id=2, asset="a", severity=Severity.CRITICAL, first_seen=T0, resolved_at=_at(4)
        ),
        FindingSpan(
            finding_id=3,
            asset="b",
            severity=Severity.LOW,
            first_seen=T0,
            environment=Environment.DEV,
        ),
        FindingSpan(
            finding_id=4,
            asset="b",
            severity=Severity.LOW,
            first_seen=T0,
            environment=Environment.DEV,
        ),
    ]
    rows = {(r.dimension, r.group): r for r in time_to_patch(spans, now, horizon_days=50)}
    overall = rows[(Dimension.ALL, "all")]
    assert (overall.findings, overall.fixed, overall.open) == (4, 2, 2)
    assert overall.median_days == pytest.approx(4.0)
    assert overall.naive_mean_days == pytest.approx(3.0)
    # RMST to tau=50: 2 d at 1, 2 d at 0.75, 46 d at 0.5 -> 2 + 1.5 + 23
    assert overall.horizon_days == 50
    assert overall.restricted_mean_days == pytest.approx(26.5)
    assert overall.restricted_mean_days > (overall.naive_mean_days or 0)
    low = rows[(Dimension.SEVERITY, "low")]
    assert low.median_days is None
    assert low.restricted_mean_days == pytest.approx(50.0)
    assert rows[(Dimension.KEV, "kev")].median_days == pytest.approx(2.0)
    assert rows[(Dimension.ENVIRONMENT, "dev")].fixed == 0
    order = [r.group for r in time_to_patch(spans, now) if r.dimension is Dimension.SEVERITY]
    assert order == ["critical", "low"]


def test_burn_down_counts_each_day() -> None:
    spans = [
        FindingSpan(
            finding_id=1,
            asset="a",
            first_seen=T0 + dt.timedelta(hours=6),
            resolved_at=_at(2),
            risk_score=3.0,
            kev=True,
        ),
        FindingSpan(finding_id=2, asset="a", first_seen=_at(1) or T0, risk_score=1.5),
    ]
    now = _at(3.5)
    assert now is not None
    got = [(p.day.day, p.open_findings, p.open_kev, p.open_risk) for p in burn_down(spans, now)]
    # resolved exactly at midnight Jan 3: still open at the end of Jan 2? No -- end of Jan 2 is
    # that midnight and the finding is gone by then.
    assert got == [(1, 1, 1, 3.0), (2, 1, 0, 1.5), (3, 1, 0, 1.5), (4, 1, 0, 1.5)]
    assert burn_down([], now) == []


def test_rollout_rates_no_data_and_counts() -> None:
    empty = rollout_rates([])
    assert (empty.total, empty.success_rate, empty.rollback_rate) == (0, None, None)
    outcomes = [
        RolloutOutcome(change_id=f"c{i}", asset="a", status=status, at=T0)
        for i, status in enumerate(
            [RolloutStatus.SUCCEEDED] * 7 + [RolloutStatus.FAILED, RolloutStatus.ROLLED_BACK] * 1
        )
    ]
    rates = rollout_rates(outcomes)
    assert (rates.total, rates.succeeded, rates.failed, rates.rolled_back) == (9, 7, 1, 1)
    assert rates.success_rate == pytest.approx(7 / 9)
    assert rates.rollback_rate == pytest.approx(1 / 9)
