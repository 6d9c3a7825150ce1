"""`patchwarden plan`, `approve`, `reject`, `except` and `exceptions`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from patchwarden import audit
from patchwarden.cli.main import Exit, _fail, _policy, _print_json, _store, app, err, out
from patchwarden.errors import GovernError, NotFound
from patchwarden.govern import (
    Decision,
    StoredPlan,
    accept_risk,
    acceptances,
    create_plan,
    decide,
    get_plan,
    revoke_acceptance,
)
from patchwarden.report.timeline import render_timeline

plan_app = typer.Typer(
    help="Remediation plans: changes in windows, rings and waves, gated for approval.",
    invoke_without_command=True,
)
app.add_typer(plan_app, name="plan")
exceptions_app = typer.Typer(
    help="Risk acceptances (exceptions) on findings.", invoke_without_command=True
)
app.add_typer(exceptions_app, name="exceptions")


def _parse_time(text: str, what: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise _fail(f"{what} {text!r} is not an ISO date or date-time", Exit.USAGE) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def plan_json(p: StoredPlan) -> dict[str, Any]:
    """The JSON form of a saved plan."""
    return {
        "id": p.id,
        "created_at": p.created_at.isoformat(),
        "created_by": p.created_by,
        "policy_digest": p.policy_digest,
        "summary": p.summary,
        "changes": [
            {
                **{k: v for k, v in c.items() if k not in {"plan_id", "approvals"}},
                "slot_start": c["slot_start"].isoformat() if c["slot_start"] else None,
                "slot_end": c["slot_end"].isoformat() if c["slot_end"] else None,
                "sla_deadline": c["sla_deadline"].isoformat() if c["sla_deadline"] else None,
                "approvals": [
                    {
                        "decision": a["decision"],
                        "actor": a["actor"],
                        "reason": a["reason"],
                        "at": a["at"].isoformat(),
                    }
                    for a in c["approvals"]
                ],
            }
            for c in p.changes
        ],
        "unscheduled": p.unscheduled,
    }


def _show(p: StoredPlan, as_json: bool, html: Path | None, limit: int) -> None:
    if html is not None:
        html.write_text(
            render_timeline(p.id, p.created_at, p.created_by, p.summary, p.changes, p.unscheduled),
            encoding="utf-8",
        )
    if as_json:
        _print_json(plan_json(p))
        return
    s = p.summary
    out.print(
        f"plan {p.id} by {escape(p.created_by)} at {p.created_at:%Y-%m-%d %H:%M} UTC: "
        f"{s['changes']} changes ({s['auto_approved']} auto-approved, "
        f"{s['require_approval']} waiting for approval), {s['waves']} waves, "
        f"{s['emergency']} emergency, {s['sla_breaches']} SLA breaches, "
        f"{s['unscheduled_actions']} actions not scheduled"
    )
    table = Table()
    for col in ("change", "ring", "wave", "slot (UTC)", "SLA due", "upgrades", "gate", "status"):
        table.add_column(col)
    for c in p.changes[: limit or None]:
        slot = f"{c['slot_start']:%Y-%m-%d %H:%M}-{c['slot_end']:%H:%M}" if c["slot_start"] else "-"
        due = f"{c['sla_deadline']:%Y-%m-%d %H:%M}" if c["sla_deadline"] else "-"
        if c["breach"]:
            due += " [red]breach[/]"
        ring = "[bold red]emergency[/]" if c["emergency"] else c["ring"]
        names = [a["package"] for a in c["actions"]]
        ups = ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")
        status = {
            "approved": "[green]approved[/]",
            "pending_approval": "[yellow]needs approval[/]",
            "rejected": "[dim]rejected[/]",
        }.get(c["status"], c["status"])
        table.add_row(
            escape(c["id"]),
            ring,
            str(c["wave"]),
            slot,
            due,
            escape(ups),
            escape(c["gate_rule"]),
            status,
        )
    out.print(table)
    if limit and len(p.changes) > limit:
        out.print(f"... {len(p.changes) - limit} more (--limit 0, --json or --html)")
    for u in p.unscheduled[:20]:
        out.print(f"not scheduled: {escape(u['action'])}: {escape(u['message'])}")
    if html is not None:
        out.print(f"timeline written to {escape(str(html))}")


@plan_app.callback()
def plan_cmd(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write an HTML timeline to this file.")
    ] = None,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Plan as of this ISO time (default: now; for what-ifs)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows in the table (0: all).")] = 40,
) -> None:
    """Plan every open, non-excepted finding: changes in maintenance windows, by ring and
    wave, within SLA deadlines and max_unavailable, each gated (auto-approve or approval).

    The plan is saved and audited; `plan show` prints a saved one.

    Examples:

      patchwarden plan

      patchwarden --policy policy.yaml plan --html plan.html

      patchwarden plan show --json
    """
    if ctx.invoked_subcommand is not None:
        return
    at = _parse_time(now, "--now") if now else None
    policy = _policy()
    with _store() as store:
        stored, _ = create_plan(store, policy, actor=audit.default_actor(), now=at)
    _show(stored, as_json, html, limit)


@plan_app.command("show")
def plan_show(
    plan_id: Annotated[
        int | None, typer.Argument(help="The plan id (default: the newest).", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write an HTML timeline to this file.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows in the table (0: all).")] = 40,
) -> None:
    """Show a saved plan with each change's current status and decisions.

    Example:

      patchwarden plan show 3 --html plan-3.html
    """
    with _store() as store:
        try:
            stored = get_plan(store, plan_id)
        except NotFound as exc:
            raise _fail(str(exc), Exit.USAGE) from exc
    _show(stored, as_json, html, limit)


def _decide(change: str, decision: Decision, reason: str, as_json: bool) -> None:
    with _store() as store:
        try:
            result = decide(store, change, decision, actor=audit.default_actor(), reason=reason)
        except (GovernError, NotFound) as exc:
            raise _fail(str(exc), Exit.USAGE) from exc
    if as_json:
        _print_json(result)
    else:
        out.print(f"{escape(result['change'])}: {result['status']} by {escape(result['actor'])}")


@app.command("approve")
def approve_cmd(
    change: Annotated[
        str, typer.Argument(metavar="CHANGE", help="asset@slot (newest plan) or PLAN/asset@slot.")
    ],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (recorded and audited).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Approve a change that waits for a human. Not by the plan's creator (four eyes).

    Example:

      PATCHWARDEN_ACTOR=alice patchwarden approve web-01@20261124T0200Z --reason "CAB-1234"
    """
    _decide(change, Decision.APPROVE, reason, as_json)


@app.command("reject")
def reject_cmd(
    change: Annotated[
        str, typer.Argument(metavar="CHANGE", help="asset@slot (newest plan) or PLAN/asset@slot.")
    ],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (recorded and audited).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Reject a change that waits for a human; it will not run.

    Example:

      patchwarden reject web-01@20261124T0200Z --reason "peak sales week"
    """
    _decide(change, Decision.REJECT, reason, as_json)


@app.command("except")
def except_cmd(
    finding: Annotated[int, typer.Argument(metavar="FINDING", help="The finding id.")],
    until: Annotated[
        str, typer.Option("--until", help="Expiry, ISO date or date-time (UTC if no zone).")
    ],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why the risk is accepted.")],
    owner: Annotated[
        str | None, typer.Option("--owner", help="Who owns the risk (default: you).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Accept the risk of a finding until a date: it leaves findings, actions and plans, and
    comes back by itself when the exception expires.

    Example:

      patchwarden except 42 --until 2026-12-31 --reason "WAF rule blocks the vector" --owner secops
    """
    actor = audit.default_actor()
    expiry = _parse_time(until, "--until")
    with _store() as store:
        try:
            record = accept_risk(
                store,
                finding_id=finding,
                owner=owner or actor,
                reason=reason,
                until=expiry,
                actor=actor,
            )
        except (GovernError, NotFound) as exc:
            raise _fail(str(exc), Exit.USAGE) from exc
    a = record.acceptance
    if as_json:
        _print_json(
            {
                "id": record.id,
                "finding": a.finding,
                "owner": a.owner,
                "reason": a.reason,
                "expires": a.expires.isoformat(),
                "created_by": record.created_by,
            }
        )
    else:
        out.print(
            f"exception {record.id}: finding {a.finding} accepted by {escape(a.owner)} until "
            f"{a.expires:%Y-%m-%d %H:%M} UTC"
        )


@exceptions_app.callback()
def exceptions_cmd(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List risk acceptances (in force, expired, revoked).

    Example:

      patchwarden exceptions --json
    """
    if ctx.invoked_subcommand is not None:
        return
    now = dt.datetime.now(dt.UTC)
    with _store() as store:
        records = acceptances(store)
    rows: list[dict[str, Any]] = [
        {
            "id": r.id,
            "finding": r.acceptance.finding,
            "owner": r.acceptance.owner,
            "reason": r.acceptance.reason,
            "expires": r.acceptance.expires.isoformat(),
            "created_by": r.created_by,
            "state": (
                "revoked" if r.revoked_at else "in force" if r.acceptance.active(now) else "expired"
            ),
        }
        for r in records
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"{len(rows)} exceptions")
    for col in ("id", "finding", "owner", "reason", "expires", "by", "state"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["id"]),
            str(r["finding"]),
            escape(r["owner"]),
            escape(r["reason"]),
            r["expires"][:16],
            escape(r["created_by"]),
            r["state"],
        )
    out.print(table)


@exceptions_app.command("revoke")
def exceptions_revoke(
    acceptance_id: Annotated[int, typer.Argument(metavar="ID", help="The exception id.")],
) -> None:
    """Revoke an exception: its finding is open again at once.

    Example:

      patchwarden exceptions revoke 7
    """
    with _store() as store:
        try:
            revoke_acceptance(store, acceptance_id, actor=audit.default_actor())
        except (GovernError, NotFound) as exc:
            raise _fail(str(exc), Exit.USAGE) from exc
    err.print(f"exception {acceptance_id} revoked")
