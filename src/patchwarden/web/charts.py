"""Dashboard charts rendered server-side as PNG (matplotlib, Agg): risk burn-down,
exposure-days by severity and KEV, and the mean-time-to-patch trend by month."""

from __future__ import annotations

import datetime as dt
import io
import statistics
import threading
from collections import defaultdict
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from matplotlib.figure import Figure

from patchwarden.policy import Policy
from patchwarden.report.data import collect
from patchwarden.report.metrics import Dimension, FindingSpan, burn_down, exposure_by_group
from patchwarden.store import Store


class Chart(StrEnum):
    """The dashboard's charts."""

    BURN_DOWN = "burn-down"
    EXPOSURE = "exposure"
    MTTP = "mttp"


def mttp_trend(spans: Sequence[FindingSpan]) -> list[tuple[str, float, float, int]]:
    """(month of the fix, mean days, median days, fixed findings) per UTC month, oldest first.

    >>> t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> day = dt.timedelta(days=1)
    >>> spans = [
    ...     FindingSpan(finding_id=1, asset="a", first_seen=t0, resolved_at=t0 + 2 * day),
    ...     FindingSpan(finding_id=2, asset="a", first_seen=t0, resolved_at=t0 + 4 * day),
    ...     FindingSpan(finding_id=3, asset="a", first_seen=t0),
    ... ]
    >>> mttp_trend(spans)
    [('2026-01', 3.0, 3.0, 2)]
    """
    by_month: dict[str, list[float]] = defaultdict(list)
    for s in spans:
        if s.resolved_at is None:
            continue
        days = (s.resolved_at - s.first_seen).total_seconds() / 86400
        by_month[s.resolved_at.astimezone(dt.UTC).strftime("%Y-%m")].append(days)
    return [
        (m, round(statistics.fmean(v), 2), round(statistics.median(v), 2), len(v))
        for m, v in sorted(by_month.items())
    ]


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


_LOCK = threading.Lock()


def render(kind: Chart, store: Store, policy: Policy) -> bytes:
    """One chart as PNG bytes, from the store's findings as of now."""
    now = dt.datetime.now(dt.UTC)
    spans = collect(store, now, sla=policy.plan.slas, weights=policy.risk).spans()
    with _LOCK:  # matplotlib's text and font caches are not thread-safe
        return _draw(kind, spans, now)


def _draw(kind: Chart, spans: Sequence[FindingSpan], now: dt.datetime) -> bytes:
    fig = Figure(figsize=(5.6, 3.0))
    ax = fig.subplots()
    empty = not spans
    if kind is Chart.BURN_DOWN:
        points = burn_down(spans, now)
        if points:
            days = [p.day for p in points]
            ax.step(days, [p.open_risk for p in points], where="post", color="tab:red")  # type: ignore[arg-type]
            ax.set_ylabel("open risk", color="tab:red")
            ax2 = ax.twinx()
            ax2.step(days, [p.open_findings for p in points], where="post", color="tab:blue")  # type: ignore[arg-type]
            ax2.set_ylabel("open findings", color="tab:blue")
            ax2.set_ylim(bottom=0)
            fig.autofmt_xdate()
        empty = not points
        ax.set_title("risk burn-down")
    elif kind is Chart.EXPOSURE:
        rows = [
            e
            for e in exposure_by_group(spans, now)
            if e.dimension in (Dimension.SEVERITY, Dimension.KEV)
        ]
        ax.barh([e.group for e in rows], [e.exposure_days for e in rows], color="tab:orange")
        ax.invert_yaxis()
        ax.set_xlabel("exposure-days")
        ax.set_title("exposure-days by severity and KEV")
    else:
        trend = mttp_trend(spans)
        months = [m for m, *_ in trend]
        ax.plot(months, [mean for _, mean, _, _ in trend], marker="o", label="mean")
        ax.plot(months, [med for _, _, med, _ in trend], marker="s", label="median")
        ax.set_ylabel("days to patch")
        ax.set_title("time to patch by month fixed")
        if trend:
            ax.legend(fontsize=8)
        empty = not trend
    if empty:
        ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)
    if kind is not Chart.EXPOSURE:
        ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    return _png(fig)
