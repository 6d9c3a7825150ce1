"""The remediation report: one self-contained HTML file, plus the same numbers as CSV and JSON.

The HTML page has inline CSS and its plots as inline base64 PNG (matplotlib, Agg backend): no
script, no stylesheet link, no external URL, so it can be mailed or archived as one file.

Outputs of :func:`write_report` in the output folder (by format):

* ``html``: ``report.html``
* ``json``: ``report.json`` (every table below plus the burn-down series)
* ``csv``: ``time_to_patch.csv``, ``exposure.csv``, ``sla.csv``, ``burn_down.csv``,
  ``rollouts.csv``
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt

from patchwarden import __version__
from patchwarden.report.data import ReportData
from patchwarden.report.metrics import (
    BurnDownPoint,
    Dimension,
    Exposure,
    RolloutRates,
    SlaCompliance,
    TimeToPatch,
    burn_down,
    exposure_by_group,
    rollout_rates,
    sla_compliance,
    time_to_patch,
)


class Format(StrEnum):
    """Output formats of ``patchwarden report``."""

    HTML = "html"
    CSV = "csv"
    JSON = "json"


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """Every number of the report."""

    now: dt.datetime
    findings: int
    open: int
    time_to_patch: tuple[TimeToPatch, ...]
    exposure: tuple[Exposure, ...]
    sla: tuple[SlaCompliance, ...]
    rollouts: RolloutRates
    burn_down: tuple[BurnDownPoint, ...]
    tables: frozenset[str]


def build_report(data: ReportData, *, horizon_days: float = 365.0) -> Report:
    """Compute every metric of :mod:`patchwarden.report.metrics` from ``data``."""
    spans = data.spans()
    return Report(
        now=data.now,
        findings=len(spans),
        open=sum(1 for s in spans if s.resolved_at is None),
        time_to_patch=tuple(time_to_patch(spans, data.now, horizon_days=horizon_days)),
        exposure=tuple(exposure_by_group(spans, data.now)),
        sla=tuple(sla_compliance(spans, data.now)),
        rollouts=rollout_rates(data.outcomes),
        burn_down=tuple(burn_down(spans, data.now)),
        tables=data.tables,
    )


# --------------------------------------------------------------------------- tables


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def ttp_rows(report: Report) -> list[dict[str, Any]]:
    """Time-to-patch table rows."""
    return [
        {
            "dimension": r.dimension.value,
            "group": r.group,
            "findings": r.findings,
            "fixed": r.fixed,
            "open": r.open,
            "km_median_days": _r(r.median_days, 2),
            "km_restricted_mean_days": _r(r.restricted_mean_days, 2),
            "horizon_days": _r(r.horizon_days, 2),
            "naive_mean_fixed_days": _r(r.naive_mean_days, 2),
        }
        for r in report.time_to_patch
    ]


def exposure_rows(report: Report) -> list[dict[str, Any]]:
    """Exposure-days table rows."""
    return [
        {
            "dimension": e.dimension.value,
            "group": e.group,
            "findings": e.findings,
            "open": e.open,
            "exposure_days": round(e.exposure_days, 2),
        }
        for e in report.exposure
    ]


def sla_rows(report: Report) -> list[dict[str, Any]]:
    """SLA compliance table rows."""
    return [
        {
            "dimension": s.dimension.value,
            "group": s.group,
            "met": s.met,
            "breached": s.breached,
            "overdue": s.overdue,
            "pending": s.pending,
            "no_sla": s.no_sla,
            "compliance": _r(s.rate, 4),
        }
        for s in report.sla
    ]


def burn_rows(report: Report) -> list[dict[str, Any]]:
    """Burn-down series rows."""
    return [
        {
            "day": p.day.isoformat(),
            "open_findings": p.open_findings,
            "open_kev": p.open_kev,
            "open_risk": round(p.open_risk, 4),
        }
        for p in report.burn_down
    ]


def rollout_row(report: Report) -> dict[str, Any]:
    """The rollout rates (``no data`` when there are no outcomes)."""
    r = report.rollouts
    return {
        "outcomes": r.total,
        "succeeded": r.succeeded,
        "failed": r.failed,
        "rolled_back": r.rolled_back,
        "success_rate": _r(r.success_rate, 4),
        "rollback_rate": _r(r.rollback_rate, 4),
        "note": "" if r.total else "no data: no rollout outcomes recorded",
    }


def report_json(report: Report) -> dict[str, Any]:
    """The whole report as JSON-ready data."""
    return {
        "generated_at": report.now.isoformat().replace("+00:00", "Z"),
        "patchwarden": __version__,
        "findings": report.findings,
        "open": report.open,
        "time_to_patch": ttp_rows(report),
        "exposure": exposure_rows(report),
        "sla": sla_rows(report),
        "rollouts": rollout_row(report),
        "burn_down": burn_rows(report),
    }


# --------------------------------------------------------------------------- plots


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _km_plot(rows: Iterable[TimeToPatch], title: str) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    drawn = 0
    for r in rows:
        if r.findings == 0:
            continue
        ax.step(r.curve.times, r.curve.survival, where="post", label=f"{r.group} (n={r.findings})")
        drawn += 1
    ax.set_xlabel("days since first seen")
    ax.set_ylabel("share still open (Kaplan-Meier)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no findings", ha="center", transform=ax.transAxes)
    return _png(fig)


def _burn_plot(points: Sequence[BurnDownPoint]) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    if points:
        days = mdates.date2num([p.day for p in points])  # type: ignore[no-untyped-call]
        ax.step(days, [p.open_risk for p in points], where="post", color="tab:red")
        ax.set_ylabel("open risk (sum of scores)", color="tab:red")
        ax2 = ax.twinx()
        ax2.step(days, [p.open_findings for p in points], where="post", color="tab:blue")
        ax2.set_ylabel("open findings", color="tab:blue")
        ax2.set_ylim(bottom=0)
        ax.xaxis_date()
        fig.autofmt_xdate()
    else:
        ax.text(0.5, 0.5, "no findings", ha="center", transform=ax.transAxes)
    ax.set_ylim(bottom=0)
    ax.set_title("risk burn-down (end of each UTC day)")
    ax.grid(alpha=0.3)
    return _png(fig)


def _exposure_plot(rows: Sequence[Exposure]) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    picked = [e for e in rows if e.dimension in (Dimension.SEVERITY, Dimension.KEV)]
    labels = [e.group for e in picked]
    ax.barh(labels, [e.exposure_days for e in picked], color="tab:orange")
    ax.invert_yaxis()
    ax.set_xlabel("exposure-days (sum of days open)")
    ax.set_title("exposure by severity and KEV")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:72em;
color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3}td:first-child,td:nth-child(2),th:first-child{text-align:left}
.note{color:#555;font-size:.9em;max-width:60em}.kpi{display:inline-block;margin:0 2em .6em 0}
.kpi b{font-size:1.5em;display:block}img{max-width:100%;margin:.4em 1em .4em 0}
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return html.escape(str(value))


def _table(rows: Sequence[dict[str, Any]], headers: Sequence[str] | None = None) -> str:
    if not rows:
        return "<p class='note'>no data</p>"
    keys = list(rows[0])
    head = "".join(f"<th>{html.escape(h)}</th>" for h in (headers or keys))
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r[k])}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(b64: str, alt: str) -> str:
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{b64}'>"


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page."""
    ttp = report.time_to_patch
    overall = next(r for r in ttp if r.dimension is Dimension.ALL)
    expo = next(e for e in report.exposure if e.dimension is Dimension.ALL)
    sla_all = next(s for s in report.sla if s.dimension is Dimension.ALL)
    kev_expo = next(
        (
            e.exposure_days
            for e in report.exposure
            if e.dimension is Dimension.KEV and e.group == "kev"
        ),
        0.0,
    )
    rollout = rollout_row(report)
    stamp = report.now.isoformat(timespec="seconds").replace("+00:00", "Z")
    median = "not reached" if overall.median_days is None else f"{overall.median_days:.1f} d"
    rate = "no data" if sla_all.rate is None else f"{sla_all.rate:.0%}"
    kpis = [
        ("findings (open)", f"{report.findings} ({report.open})"),
        ("median time-to-patch", median),
        (
            f"restricted mean ({overall.horizon_days:.0f} d)",
            f"{overall.restricted_mean_days:.1f} d",
        ),
        ("exposure-days", f"{expo.exposure_days:,.1f}"),
        ("KEV exposure-days", f"{kev_expo:,.1f}"),
        ("SLA compliance", rate),
    ]
    rollout_text = (
        "<p class='note'>no data: no rollout outcomes are recorded yet.</p>"
        if not report.rollouts.total
        else _table([rollout])
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>patchwarden remediation report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>patchwarden remediation report</h1>",
        f"<p class='note'>generated {stamp} by patchwarden {html.escape(__version__)}</p>",
        "<div>",
        *(f"<div class='kpi'><b>{html.escape(v)}</b>{html.escape(k)}</div>" for k, v in kpis),
        "</div>",
        "<h2>Time to patch</h2>",
        "<p class='note'>Kaplan-Meier estimate: findings still open are right-censored at "
        "their current age, so slow open findings count (a mean over fixed findings only "
        "flatters the number; it is shown last for contrast). Median: first day on which at "
        "most half are still open (&ndash; when not reached). Restricted mean: area under the "
        "curve up to the horizon.</p>",
        _table(ttp_rows(report)),
        _img(
            _km_plot((r for r in ttp if r.dimension is Dimension.SEVERITY), "by severity"),
            "time-to-patch by severity",
        ),
        _img(
            _km_plot((r for r in ttp if r.dimension is Dimension.KEV), "KEV vs not KEV"),
            "time-to-patch by KEV",
        ),
        _img(
            _km_plot((r for r in ttp if r.dimension is Dimension.ENVIRONMENT), "by environment"),
            "time-to-patch by environment",
        ),
        "<h2>Exposure</h2>",
        "<p class='note'>Sum of the days each finding stayed open (to now for open ones).</p>",
        _table(exposure_rows(report)),
        _img(_exposure_plot(report.exposure), "exposure-days"),
        "<h2>SLA compliance</h2>",
        "<p class='note'>Deadlines from the policy's <code>slas</code> (KEV due date, else the "
        "stricter of SSVC and severity). Compliance = met / (met + breached + overdue); open "
        "findings past their deadline count as breaches, open ones not yet due are pending.</p>",
        _table(sla_rows(report)),
        "<h2>Risk burn-down</h2>",
        "<p class='note'>Open findings and their summed current risk score at the end of each "
        "day.</p>",
        _img(_burn_plot(report.burn_down), "risk burn-down"),
        "<h2>Patch rollouts</h2>",
        rollout_text,
        "</body></html>",
    ]
    return "\n".join(parts)


def _write_csv(path: Path, rows: Sequence[dict[str, Any]], header: Sequence[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(header))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})


_CSV_HEADERS = {
    "time_to_patch.csv": [
        "dimension",
        "group",
        "findings",
        "fixed",
        "open",
        "km_median_days",
        "km_restricted_mean_days",
        "horizon_days",
        "naive_mean_fixed_days",
    ],
    "exposure.csv": ["dimension", "group", "findings", "open", "exposure_days"],
    "sla.csv": [
        "dimension",
        "group",
        "met",
        "breached",
        "overdue",
        "pending",
        "no_sla",
        "compliance",
    ],
    "burn_down.csv": ["day", "open_findings", "open_kev", "open_risk"],
    "rollouts.csv": (
        ["outcomes", "succeeded", "failed", "rolled_back", "success_rate", "rollback_rate", "note"]
    ),
}


def write_report(report: Report, out: Path, formats: Iterable[Format]) -> list[Path]:
    """Write the report in ``formats`` into the folder ``out`` (created); returns the files."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    wanted = set(formats)
    if Format.HTML in wanted:
        path = out / "report.html"
        path.write_text(render_html(report), encoding="utf-8")
        written.append(path)
    if Format.JSON in wanted:
        path = out / "report.json"
        path.write_text(json.dumps(report_json(report), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    if Format.CSV in wanted:
        tables = {
            "time_to_patch.csv": ttp_rows(report),
            "exposure.csv": exposure_rows(report),
            "sla.csv": sla_rows(report),
            "burn_down.csv": burn_rows(report),
            "rollouts.csv": [rollout_row(report)],
        }
        for name, rows in tables.items():
            path = out / name
            _write_csv(path, rows, _CSV_HEADERS[name])
            written.append(path)
    return written
