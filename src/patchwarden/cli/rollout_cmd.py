"""``patchwarden rollout start|status|resume|abort``: run an approved plan, resumably."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from patchwarden import audit
from patchwarden.cli.main import Exit, _fail, _policy, _print_json, _store, app, err, out
from patchwarden.errors import FleetFileError, NotFound, UnknownEcosystem
from patchwarden.execute.interface import Reason
from patchwarden.execute.rollout import (
    RolloutError,
    RolloutOptions,
    RolloutState,
    create_rollout,
    dry_run,
    latest_rollout_id,
    rollout_status,
    run_rollout,
    save_hosts,
)
from patchwarden.govern import latest_plan_id
from patchwarden.inventory.fleet import load_fleet
from patchwarden.plan.windows import parse_duration

rollout_app = typer.Typer(
    help="Run an approved plan ring by ring, wave by wave; resume after a crash.",
    no_args_is_help=True,
)
app.add_typer(rollout_app, name="rollout")

BACKEND_NAMES = ("ssh", "local", "simulate", "ansible")


class _Bars:
    """One progress bar per wave (rich, on stderr)."""

    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            disable=not enabled,
        )
        self.task: TaskID | None = None

    def wave(self, ring: str, wave: int, total: int, done: int) -> None:
        self.task = self.progress.add_task(f"{ring} wave {wave}", total=total, completed=done)

    def change(self, change_id: str, result: str, message: str) -> None:
        if self.task is not None:
            self.progress.advance(self.task)
        if result not in {"applied"}:
            self.progress.console.print(
                f"[yellow]{escape(change_id)}[/]: {escape(result)} {escape(message[:200])}"
            )

    def note(self, message: str) -> None:
        self.progress.console.print(f"[yellow]note:[/] {escape(message)}")


def _exit_code(state: str, status: dict[str, Any]) -> int:
    if state == RolloutState.COMPLETED and not any(
        c["state"] == "failed" for c in status["changes"]
    ):
        return int(Exit.OK)
    return int(Exit.PARTIAL)


def _run(rollout_id: int, *, step_delay: float, force: bool, quiet: bool) -> None:
    actor = audit.default_actor()
    with _store() as store:
        bars = _Bars(enabled=not quiet)
        try:
            with bars.progress:
                state = asyncio.run(
                    run_rollout(
                        store,
                        rollout_id,
                        actor=actor,
                        observer=bars,
                        step_delay=step_delay,
                        force=force,
                    )
                )
        except (RolloutError, NotFound) as exc:
            raise _fail(str(exc), Exit.USAGE) from exc
        status = rollout_status(store, rollout_id)
    _print_summary(status)
    raise typer.Exit(_exit_code(state, status))


def _print_summary(status: dict[str, Any]) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(status["counts"].items()))
    out.print(f"rollout {status['id']} (plan {status['plan']}): {status['state']}; {counts}")
    if status["halt_reason"]:
        out.print(f"halted: {escape(status['halt_reason'])}")


@rollout_app.command("start")
def start_cmd(
    plan: Annotated[int | None, typer.Option("--plan", help="plan id (default: newest)")] = None,
    fleet: Annotated[
        Path | None, typer.Option("--fleet", help="fleet file with connection: blocks")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="one backend for every host: ssh|local|simulate|ansible")
    ] = None,
    dry: Annotated[bool, typer.Option("--dry-run", help="print the commands only")] = False,
    soak: Annotated[str | None, typer.Option(help="soak between rings (e.g. 30m, 0m)")] = None,
    sim_fail: Annotated[
        list[str] | None, typer.Option("--sim-fail", help="simulate: HOST=REASON")
    ] = None,
    sim_seed: Annotated[int, typer.Option(help="simulate: failure seed")] = 0,
    sim_failure_rate: Annotated[float, typer.Option(help="simulate: share failing")] = 0.0,
    step_delay: Annotated[float, typer.Option(hidden=True)] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="dry run as JSON")] = False,
) -> None:
    """Start a rollout of an approved plan (rejected and unapproved changes are skipped)."""
    if backend is not None and backend not in BACKEND_NAMES:
        raise _fail(f"unknown backend {backend!r} (one of {', '.join(BACKEND_NAMES)})", Exit.USAGE)
    inject: dict[str, str] = {}
    for item in sim_fail or []:
        host, sep, reason = item.partition("=")
        if not sep or reason not in {r.value for r in Reason}:
            raise _fail(f"--sim-fail {item!r}: expected HOST=REASON", Exit.USAGE)
        inject[host] = reason
    policy = _policy()
    try:
        soak_td = parse_duration(soak) if soak is not None else None
    except ValueError as exc:
        raise _fail(f"--soak {soak!r}: {exc}", Exit.USAGE) from exc
    with _store() as store:
        if fleet is not None:
            try:
                saved = save_hosts(store, load_fleet(fleet))
            except FleetFileError as exc:
                raise _fail(str(exc), Exit.USAGE) from exc
            err.print(f"{saved} host connection(s) stored from {fleet}")
        plan_id = plan if plan is not None else latest_plan_id(store)
        if plan_id is None:
            raise _fail("no plan yet (run `patchwarden plan`)", Exit.USAGE)
        if dry:
            try:
                rows = dry_run(store, plan_id, backend)
            except (NotFound, UnknownEcosystem) as exc:
                raise _fail(str(exc), Exit.USAGE) from exc
            if as_json:
                _print_json(rows)
                return
            for r in rows:
                out.print(
                    f"# {r['change']} ({r['ring']} wave {r['wave']}, {r['status']}, "
                    f"backend {r['backend'] or '-'})"
                )
                for c in r["commands"]:
                    out.print(f"{c['step']:9} {escape(c['command'])}")
            return
        options = RolloutOptions.from_policy(
            policy.rollout,
            soak_td if soak_td is not None else policy.plan.rings.soak,
            backend=backend,
            simulate={"seed": sim_seed, "failure_rate": sim_failure_rate, "inject": inject},
        )
        if soak_td is not None:
            options = RolloutOptions(
                **{**options.to_json(), "soak_seconds": soak_td.total_seconds()}
            )
        try:
            rollout_id = create_rollout(
                store, plan_id=plan_id, options=options, actor=audit.default_actor()
            )
        except (RolloutError, NotFound) as exc:
            raise _fail(str(exc), Exit.USAGE) from exc
    err.print(f"rollout {rollout_id} started (plan {plan_id}, pid {os.getpid()})")
    _run(rollout_id, step_delay=step_delay, force=False, quiet=quiet)


def _resolve(rollout_id: int | None) -> int:
    with _store() as store:
        rid = rollout_id if rollout_id is not None else latest_rollout_id(store)
    if rid is None:
        raise _fail("no rollout yet (run `patchwarden rollout start`)", Exit.USAGE)
    return rid


@rollout_app.command("resume")
def resume_cmd(
    rollout_id: Annotated[int | None, typer.Argument(help="rollout id (default: newest)")] = None,
    force: Annotated[bool, typer.Option(help="even if its recorded runner seems alive")] = False,
    step_delay: Annotated[float, typer.Option(hidden=True)] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Continue a rollout exactly where it stopped (after a crash or kill -9)."""
    _run(_resolve(rollout_id), step_delay=step_delay, force=force, quiet=quiet)


@rollout_app.command("abort")
def abort_cmd(
    rollout_id: Annotated[int | None, typer.Argument(help="rollout id (default: newest)")] = None,
) -> None:
    """Stop a running rollout before its next change (steps running now finish)."""
    from patchwarden.execute.rollout import abort_rollout

    rid = _resolve(rollout_id)
    with _store() as store:
        try:
            abort_rollout(store, rid, actor=audit.default_actor())
        except (RolloutError, NotFound) as exc:
            raise _fail(str(exc), Exit.USAGE) from exc
    out.print(f"rollout {rid} aborted")


@rollout_app.command("status")
def status_cmd(
    rollout_id: Annotated[int | None, typer.Argument(help="rollout id (default: newest)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A rollout's state, its changes' outcomes and why any failed."""
    with _store() as store:
        try:
            status = rollout_status(store, rollout_id)
        except NotFound as exc:
            raise _fail(str(exc), Exit.USAGE) from exc
    if as_json:
        _print_json(status)
        return
    _print_summary(status)
    table = Table("change", "ring", "wave", "state", "result", "why")
    for c in status["changes"]:
        table.add_row(
            escape(c["change"]),
            c["ring"],
            str(c["wave"]),
            c["state"],
            str(c.get("result") or ""),
            escape(f"{c.get('reason') or ''} {c.get('message') or ''}".strip()[:300]),
        )
    out.print(table)
    for p in status["pending_restarts"]:
        what = "reboot" if p["reboot"] else ", ".join(p["units"]) or "processes"
        out.print(
            f"pending restart: finding {p['finding']} {p['vulnerability']} on {p['asset']} ({what})"
        )


@rollout_app.command("restarts")
def restarts_cmd(
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="run the restart check on each asset (over its stored connection) and clear "
            "the assets that now run the fixed code",
        ),
    ] = False,
    asset: Annotated[
        list[str] | None, typer.Option("--asset", help="only this asset (repeatable)")
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(help=f"reach every asset with one backend ({', '.join(BACKEND_NAMES)})"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Findings fixed on disk whose old code still runs ("pending restart").

    A finding stays pending restart after its rollout until a restart check shows no process
    still maps the replaced files and no newer kernel waits for a reboot. Restart the services
    (or reboot) your own way, then run [bold]rollout restarts --check[/]: clean assets are
    cleared and their findings resolved (audited as verify).

    Exit codes: 0 nothing pending (after --check), 1 some asset still runs old code,
    3 a check could not run (unreachable, sudo refused, no connection).
    """
    from patchwarden.execute.rollout import check_pending_restarts, pending_restarts

    if backend is not None and backend not in BACKEND_NAMES:
        raise _fail(
            f"unknown backend {backend!r}; choose one of: {', '.join(BACKEND_NAMES)}", Exit.USAGE
        )
    wanted = set(asset) if asset else None
    with _store() as store:
        results: list[dict[str, Any]] = []
        if check:
            try:
                results = asyncio.run(
                    check_pending_restarts(
                        store, actor=audit.default_actor(), assets=wanted, backend=backend
                    )
                )
            except RolloutError as exc:
                raise _fail(str(exc), Exit.USAGE) from exc
        rows = [p for p in pending_restarts(store) if wanted is None or p["asset_id"] in wanted]
    left = [
        {
            "asset": p["asset_id"],
            "finding": p["finding_id"],
            "vulnerability": p["vulnerability"],
            "package": p["package"],
            "units": list(p["units"] or []),
            "reboot": bool(p["reboot"]),
            "since": p["since"].isoformat(),
        }
        for p in rows
    ]
    code = (
        Exit.PARTIAL
        if any(r["state"] == "error" for r in results)
        else (Exit.GATE if left else Exit.OK)
    )
    if as_json:
        _print_json({"checks": results, "pending": left})
        raise typer.Exit(code)
    for r in results:
        if r["state"] == "cleared":
            out.print(f"{r['asset']}: clean, {r['cleared']} finding(s) resolved")
        elif r["state"] == "pending":
            what = ", ".join(r["units"]) or ", ".join(r["processes"][:5]) or "processes"
            if r["reboot"]:
                what = f"reboot ({what})" if r["units"] or r["processes"] else "reboot"
            out.print(f"{r['asset']}: still runs old code: {escape(what)}")
        else:
            err.print(f"{r['asset']}: {escape(r['message'])}")
    if not left:
        out.print("no pending restarts")
    else:
        table = Table("asset", "finding", "vulnerability", "package", "needs")
        for p in left:
            needs = "reboot" if p["reboot"] else ", ".join(p["units"]) or "process restart"
            table.add_row(
                escape(p["asset"]), str(p["finding"]), p["vulnerability"], escape(p["package"]),
                escape(needs),
            )  # fmt: skip
        out.print(table)
    raise typer.Exit(code)
