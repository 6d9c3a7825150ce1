"""A self-contained HTML timeline of a saved plan: waves and windows as an inline SVG chart.

One row per change (grouped by ring, in slot order), one bar per slot coloured by its status
(approved, waiting for approval, rejected), emergency changes outlined, and a tick at each
change's SLA deadline. No scripts, no external assets: the file can be mailed or archived as
change-management evidence.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from typing import Any

_RING_ORDER = {"canary": 0, "pilot": 1, "broad": 2}
_STATUS_COLOUR = {
    "approved": "#2e7d32",
    "pending_approval": "#f9a825",
    "rejected": "#9e9e9e",
}
_ROW = 22
_LEFT = 330
_WIDTH = 1100


def _predicted(action: Mapping[str, Any]) -> str:
    """`` (P(fail) 12.3%)`` with the basis as a tooltip, when the plan has a prediction."""
    p = action.get("predicted_failure")
    if not p:
        return ""
    return (
        f' <span title="{html.escape(str(p.get("basis", "")))}">'
        f"(P(fail) {float(p['probability']):.1%})</span>"
    )


def _x(at: dt.datetime, start: dt.datetime, span: float) -> float:
    return _LEFT + (at - start).total_seconds() / span * (_WIDTH - _LEFT - 20)


def render_timeline(
    plan_id: int,
    created_at: dt.datetime,
    created_by: str,
    summary: Mapping[str, Any],
    changes: Sequence[Mapping[str, Any]],
    unscheduled: Sequence[Mapping[str, Any]],
) -> str:
    """The HTML document for one plan (``changes`` are rows of the ``changes`` table)."""
    esc = html.escape
    rows = sorted(
        changes,
        key=lambda c: (
            bool(c["emergency"]),
            _RING_ORDER.get(c["ring"], 9),
            c["slot_start"] or created_at,
            c["asset_id"],
        ),
    )
    times = [t for c in rows for t in (c["slot_start"], c["slot_end"], c["sla_deadline"]) if t]
    # The chart starts at planning time: a deadline already past (an old KEV due date) is
    # drawn at the left edge as "overdue" instead of stretching the axis back for years.
    start = created_at - dt.timedelta(hours=6)
    end = max([created_at + dt.timedelta(hours=1), *times])
    span = max((end - start).total_seconds(), 3600.0)
    height = 40 + _ROW * max(len(rows), 1) + 30
    svg: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'role="img" aria-label="plan {plan_id} timeline">'
    ]
    days = int(span // 86400) + 1
    step = max(1, days // 12)
    day0 = dt.datetime.combine(start.date(), dt.time(), tzinfo=dt.UTC)
    for i in range(0, days + 1, step):
        at = day0 + dt.timedelta(days=i)
        if at < start or at > end:
            continue
        x = _x(at, start, span)
        svg.append(
            f'<line x1="{x:.1f}" y1="30" x2="{x:.1f}" y2="{height - 20}" class="grid"/>'
            f'<text x="{x:.1f}" y="22" class="axis">{at:%b %d}</text>'
        )
    now_x = _x(created_at, start, span)
    svg.append(
        f'<line x1="{now_x:.1f}" y1="30" x2="{now_x:.1f}" y2="{height - 20}" class="now"/>'
        f'<text x="{now_x + 3:.1f}" y="{height - 8}" class="axis">planned</text>'
    )
    for i, c in enumerate(rows):
        y = 36 + i * _ROW
        label = f"{c['asset_id']} · {'emergency' if c['emergency'] else c['ring']}"
        if not c["emergency"]:
            label += f" · wave {c['wave']}"
        svg.append(f'<text x="8" y="{y + 13}" class="label">{esc(label)}</text>')
        if c["slot_start"] and c["slot_end"]:
            x0 = _x(c["slot_start"], start, span)
            x1 = max(_x(c["slot_end"], start, span), x0 + 3)
            colour = _STATUS_COLOUR.get(c["status"], "#607d8b")
            outline = ' stroke="#c62828" stroke-width="2"' if c["emergency"] else ""
            title = (
                f"{c['id']}: {c['slot_start']:%Y-%m-%d %H:%M} to {c['slot_end']:%H:%M} UTC, "
                f"{c['status']}, gate: {c['gate_rule']}"
            )
            svg.append(
                f'<rect x="{x0:.1f}" y="{y + 2}" width="{x1 - x0:.1f}" height="{_ROW - 6}" '
                f'fill="{colour}"{outline}><title>{esc(title)}</title></rect>'
            )
        if c["sla_deadline"]:
            due = c["sla_deadline"]
            cls = "deadline breach" if c["breach"] else "deadline"
            title = f"SLA deadline {due:%Y-%m-%d %H:%M} UTC"
            if due < start:
                svg.append(
                    f'<text x="{_LEFT - 4}" y="{y + 13}" class="overdue" text-anchor="end">'
                    f"overdue since {due:%Y-%m-%d}<title>{esc(title)}</title></text>"
                )
            else:
                xd = _x(due, start, span)
                svg.append(
                    f'<line x1="{xd:.1f}" y1="{y}" x2="{xd:.1f}" y2="{y + _ROW - 2}" '
                    f'class="{cls}"><title>{esc(title)}</title></line>'
                )
    svg.append("</svg>")

    table = [
        "<table><thead><tr><th>change</th><th>ring</th><th>wave</th><th>slot (UTC)</th>"
        "<th>SLA due</th><th>upgrades</th><th>disruption</th><th>gate</th><th>status</th>"
        "</tr></thead><tbody>"
    ]
    for c in rows:
        ups = "<br>".join(
            esc(f"{a['package']} {a['installed_version']} → {a['target_version']}") + _predicted(a)
            for a in c["actions"]
        )
        slot = f"{c['slot_start']:%Y-%m-%d %H:%M}–{c['slot_end']:%H:%M}" if c["slot_start"] else ""
        due = f"{c['sla_deadline']:%Y-%m-%d %H:%M}" if c["sla_deadline"] else ""
        flags = " <b>SLA breach</b>" if c["breach"] else ""
        flags += " <b>emergency</b>" if c["emergency"] else ""
        decided = "".join(
            f"<br>{esc(a['decision'])} by {esc(a['actor'])}: {esc(a['reason'])}"
            for a in c.get("approvals", [])
        )
        table.append(
            f"<tr><td>{esc(c['id'])}</td><td>{esc(c['ring'])}</td><td>{c['wave']}</td>"
            f"<td>{slot}</td><td>{due}{flags}</td><td>{ups}</td><td>{esc(c['disruption'])}</td>"
            f"<td>{esc(c['gate_rule'])}</td><td>{esc(c['status'])}{decided}</td></tr>"
        )
    table.append("</tbody></table>")
    if unscheduled:
        table.append("<h2>Not scheduled</h2><ul>")
        table.extend(
            f"<li>{esc(u['action'])}: {esc(u['reason'])} — {esc(u['message'])}</li>"
            for u in unscheduled
        )
        table.append("</ul>")
    rings = ", ".join(f"{k} {v}" for k, v in dict(summary.get("by_ring", {})).items())
    facts = (
        f"{summary.get('changes', 0)} changes in {summary.get('waves', 0)} waves "
        f"({rings}); {summary.get('auto_approved', 0)} auto-approved, "
        f"{summary.get('require_approval', 0)} waiting for approval; "
        f"{summary.get('emergency', 0)} emergency, {summary.get('sla_breaches', 0)} SLA "
        f"breaches; {summary.get('unscheduled_actions', 0)} of {summary.get('actions', 0)} "
        "actions not scheduled"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>patchwarden plan {plan_id}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 24px; color: #212121; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; }}
.axis {{ font-size: 11px; fill: #616161; }} .label {{ font-size: 12px; fill: #212121; }}
.grid {{ stroke: #eeeeee; }} .now {{ stroke: #1565c0; stroke-dasharray: 4 3; }}
.deadline {{ stroke: #6a1b9a; stroke-width: 2; }} .breach {{ stroke: #c62828; stroke-width: 3; }}
.overdue {{ font-size: 11px; fill: #c62828; }}
table {{ border-collapse: collapse; margin-top: 16px; font-size: 12px; }}
td, th {{ border: 1px solid #e0e0e0; padding: 4px 6px; vertical-align: top; text-align: left; }}
.legend span {{ display: inline-block; margin-right: 14px; }}
.sw {{ display: inline-block; width: 12px; height: 12px; vertical-align: middle;
       margin-right: 4px; }}
</style></head><body>
<h1>Plan {plan_id}</h1>
<p>created {created_at:%Y-%m-%d %H:%M} UTC by {esc(created_by)} — {facts}</p>
<p class="legend">
<span><i class="sw" style="background:#2e7d32"></i>approved</span>
<span><i class="sw" style="background:#f9a825"></i>waiting for approval</span>
<span><i class="sw" style="background:#9e9e9e"></i>rejected</span>
<span><i class="sw" style="border:2px solid #c62828"></i>emergency change</span>
<span><i class="sw" style="background:#6a1b9a"></i>SLA deadline (red: breached)</span>
</p>
{"".join(svg)}
{"".join(table)}
</body></html>
"""
