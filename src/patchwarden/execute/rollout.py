"""The rollout engine: run an approved plan's changes ring by ring, wave by wave, resumably.

* **Order.** Changes run in ring order (canary, pilot, broad), and within a ring by wave; the
  changes of one wave run at once (at most ``rollout.max_concurrency`` hosts). The next ring
  never starts before ``soak`` has passed since the previous ring's last change *finished*
  (the stored finish times, so this holds across a resume too).
* **Governance.** Only ``approved`` changes run; ``rejected`` and ``pending_approval`` ones are
  recorded as ``skipped`` with the reason.
* **Halt.** After each wave, when the share of its changes that failed (rolled back or failed)
  is above ``rollout.max_failure_rate``, the rollout halts with the reason; a failed host is
  rolled back to its snapshot by the same step sequence as :meth:`Executor.apply`.
* **Resume.** Every step is a ``rollout_steps`` row written ``running`` before it runs and
  ``done``/``failed`` (with its outcome) after, in the same transaction as its audit entry
  (``rollout.step``, ``verify``, ``rollback``). :func:`run_rollout` on a rollout that was killed
  skips every finished step (reusing its recorded outcome: a rollback restores the snapshot
  taken before the crash) and re-checks a step left ``running``: an ``apply`` first re-reads
  the installed versions and is only re-run when the targets are not installed; read-only
  steps (snapshot, verify, health, restart check) are simply run again; a rollback re-installs
  the snapshot versions (idempotent).
* **Resolution.** After verify and health, the asset's stored inventory is refreshed with the
  verified versions and rescanned (:func:`patchwarden.service.scan`, which resolves the findings
  that are gone and audits the scan); when the restart check finds processes still mapping the
  replaced files, or a newer kernel than the running one, the resolved findings get a
  ``pending_restarts`` row ("pending restart") until :func:`clear_pending_restarts` sees the
  host clean (or ``rollout.restart_services`` restarts the units at once).

Per step, per host, per change: rows of ``rollout_steps`` (step names ``change`` -- the
change's own row, holding its final outcome -- ``snapshot:N``, ``apply:N``, ``verify:N``,
``health``, ``restart_check``, ``restart``, ``rescan`` and ``rollback``; N is the index of the
package-manager group within the change).

How hosts are reached: ``rollout start --fleet FILE`` stores each asset's ``connection:``
block in ``rollout_hosts`` (a separate table, so scanning never depends on it);
``--backend NAME`` runs every host with one backend instead (``simulate`` needs no
connection data).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import shlex
import socket
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from packageurl import PackageURL

from patchwarden import audit
from patchwarden.errors import NotFound, PatchwardenError
from patchwarden.execute.health import (
    CommandCheck,
    HealthCheck,
    HttpCheck,
    SystemdCheck,
    TcpCheck,
    run_health_checks,
)
from patchwarden.execute.interface import (
    NOT_STARTED_REASONS,
    Applied,
    Become,
    Executor,
    Failed,
    Host,
    Outcome,
    Reason,
    RolledBack,
    Skipped,
    StepResult,
    _verify,
    classify_failure,
)
from patchwarden.execute.restart import RestartReport, parse_restart_scan, restart_scan_step
from patchwarden.execute.simulate import SimulatedExecutor
from patchwarden.execute.steps import (
    Change,
    Pin,
    Step,
    StepKind,
    install_step,
    manager_for,
    parse_listing,
    snapshot_step,
)
from patchwarden.inventory.fleet import Connection, Fleet
from patchwarden.model import AssetId
from patchwarden.policy import DEFAULT_REBOOT_COMMAND, RolloutPolicy
from patchwarden.store import Store
from patchwarden.store import schema as t
from patchwarden.store.bulk import InventoryColumns, InventoryRow, inventory_digest


class RolloutError(PatchwardenError):
    """A rollout cannot start, resume or abort (no plan, wrong state, already running)."""


class RolloutState(StrEnum):
    """Where a rollout stands."""

    RUNNING = "running"
    """Started and not finished (or killed: ``rollout resume`` continues it)."""
    COMPLETED = "completed"
    """Every change ran (some may have failed without passing the threshold)."""
    HALTED = "halted"
    """A wave's failure rate passed the threshold."""
    ABORTED = "aborted"
    """Stopped by ``rollout abort``."""


class StepState(StrEnum):
    """Where one step stands."""

    PLANNED = "planned"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class ChangeResult(StrEnum):
    """The final outcome of one change (its ``change`` row)."""

    APPLIED = "applied"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    SKIPPED = "skipped"


SKIP_GOVERNANCE = "governance"
SKIP_NOT_DUE = "not_due"
"""Reason code: an approved change outside its window (daemon rollouts)."""
"""The ``reason`` of a change skipped because it is not approved."""


class RolloutObserver(Protocol):
    """Progress of a rollout (the CLI draws progress bars; the core never imports rich)."""

    def wave(self, ring: str, wave: int, total: int, done: int) -> None:
        """A wave starts with ``total`` changes, ``done`` of them already finished."""

    def change(self, change_id: str, result: str, message: str) -> None:
        """A change finished."""

    def note(self, message: str) -> None:
        """Anything else worth saying (soak waits, halts)."""


class NullRolloutObserver:
    """Says nothing."""

    def wave(self, ring: str, wave: int, total: int, done: int) -> None:
        """Nothing."""

    def change(self, change_id: str, result: str, message: str) -> None:
        """Nothing."""

    def note(self, message: str) -> None:
        """Nothing."""


def utcnow() -> dt.datetime:
    """The current time, UTC, whole microseconds dropped (as the store keeps it)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


# --------------------------------------------------------------------------- hosts


def save_hosts(store: Store, fleet: Fleet, *, now: dt.datetime | None = None) -> int:
    """Store the ``connection:`` block of every fleet asset that has one; returns the count."""
    now = now or utcnow()
    rows = [
        {
            "asset_id": fa.asset.id,
            "connection": dataclasses.asdict(fa.connection),
            "source": str(fleet.path),
            "updated_at": now,
        }
        for fa in fleet.assets
        if fa.connection is not None
    ]
    with store.transaction() as conn:
        ids = [r["asset_id"] for r in rows]
        if ids:
            conn.execute(t.rollout_hosts.delete().where(t.rollout_hosts.c.asset_id.in_(ids)))
            conn.execute(t.rollout_hosts.insert(), rows)
    return len(rows)


def load_hosts(store: Store) -> dict[str, Connection]:
    """Asset id -> stored connection."""
    with store.engine.connect() as conn:
        rows = list(conn.execute(sa.select(t.rollout_hosts)))
    out: dict[str, Connection] = {}
    for r in rows:
        data = dict(r.connection)
        data["health"] = tuple(data.get("health") or ())
        out[r.asset_id] = Connection(**data)
    return out


def health_checks(specs: Iterable[Mapping[str, Any]]) -> tuple[HealthCheck, ...]:
    """Health checks from fleet-file mappings.

    >>> health_checks([{"tcp": "127.0.0.1:22"}, {"command": "true", "timeout": 5}])
    (TcpCheck(address='127.0.0.1', port=22, timeout=0.0), CommandCheck(argv=('true',), become=False, timeout=5))
    """  # noqa: E501
    checks: list[HealthCheck] = []
    for spec in specs:
        timeout = spec.get("timeout", 0.0)
        if "command" in spec:
            cmd = spec["command"]
            argv = tuple(cmd) if isinstance(cmd, list) else ("sh", "-c", str(cmd))
            if isinstance(cmd, str) and " " not in cmd:
                argv = (cmd,)
            checks.append(
                CommandCheck(argv=argv, become=bool(spec.get("become", False)), timeout=timeout)
            )
        elif "http" in spec:
            checks.append(
                HttpCheck(
                    url=str(spec["http"]), status=int(spec.get("status", 200)), timeout=timeout
                )
            )
        elif "tcp" in spec:
            address, _, port = str(spec["tcp"]).rpartition(":")
            checks.append(TcpCheck(address=address, port=int(port), timeout=timeout))
        elif "systemd" in spec:
            checks.append(SystemdCheck(unit=str(spec["systemd"]), timeout=timeout))
    return tuple(checks)


def host_for(asset: str, connection: Connection | None) -> Host:
    """The :class:`Host` of an asset from its stored connection (defaults when None)."""
    if connection is None:
        return Host(name=AssetId(asset))
    return Host(
        name=AssetId(asset),
        address=connection.host or asset,
        port=connection.port,
        user=connection.user,
        client_keys=(Path(connection.identity_file),) if connection.identity_file else (),
        known_hosts=Path(connection.known_hosts) if connection.known_hosts else None,
        become=Become(connection.become),
        python=connection.python,
        health=health_checks(connection.health),
    )


# --------------------------------------------------------------------------- plan -> steps


def exec_changes(actions: Sequence[Mapping[str, Any]]) -> list[Change]:
    """One :class:`Change` per (package manager, ecosystem) from a stored change's actions.

    >>> [c.targets for c in exec_changes([{"id": "h/urllib3", "ecosystem": "PyPI",
    ...     "package": "urllib3", "binaries": [], "installed_version": "1.24.1",
    ...     "target_version": "1.24.2"}])]
    [(Pin(name='urllib3', version='1.24.2'),)]
    """
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for action in actions:
        manager_for(str(action["ecosystem"]))  # raises UnknownEcosystem early
        grouped.setdefault(str(action["ecosystem"]), []).append(action)
    out: list[Change] = []
    for ecosystem, group in grouped.items():
        targets: dict[str, Pin] = {}
        previous: dict[str, Pin] = {}
        for a in group:
            for name in a.get("binaries") or [a["package"]]:
                targets[name] = Pin(name=name, version=str(a["target_version"]))
                previous[name] = Pin(name=name, version=str(a["installed_version"]))
        out.append(
            Change(
                manager=manager_for(ecosystem),
                ecosystem=ecosystem,
                targets=tuple(targets.values()),
                previous=tuple(previous.values()),
                action_ids=tuple(str(a["id"]) for a in group),
            )
        )
    return out


def _result_json(result: StepResult) -> dict[str, Any]:
    return {
        "kind": result.step.kind.value,
        "argv": list(result.step.argv),
        "rc": result.rc,
        "reason": result.reason.value if result.reason else None,
        "message": result.message,
        "stdout": result.stdout[-2000:],
        "stderr": result.stderr[-2000:],
        "seconds": round(result.seconds, 3),
    }


def _failure(result: StepResult) -> tuple[Reason, str]:
    reason = result.reason or classify_failure(result.stderr, result.stdout)
    tail = (result.stderr or result.stdout).strip()[-400:]
    message = result.message or f"{result.step.kind.value} failed (exit {result.rc}): {tail}"
    return reason, message


def _restart_json(report: RestartReport) -> dict[str, Any]:
    return {
        "pending": report.pending,
        "units": list(report.units),
        "processes": [
            {"pid": p.pid, "command": p.command, "unit": p.unit, "files": list(p.files)}
            for p in report.processes
        ][:50],
        "running_kernel": report.running_kernel,
        "newest_kernel": report.newest_kernel,
        "reboot_required": report.reboot_required,
    }


# --------------------------------------------------------------------------- rollouts


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutOptions:
    """What a rollout was started with (stored, so that a resume runs the same way)."""

    backend: str | None = None
    """One backend for every host (None: each host's ``connection.backend``)."""
    max_failure_rate: float = 0.2
    """See :class:`~patchwarden.policy.RolloutPolicy`."""
    max_concurrency: int = 10
    """See :class:`~patchwarden.policy.RolloutPolicy`."""
    soak_seconds: float = 86400.0
    """Soak between rings."""
    restart_services: bool = False
    """See :class:`~patchwarden.policy.RolloutPolicy`."""
    reboot: str = "leave"
    """See :class:`~patchwarden.policy.RolloutPolicy` (``leave`` or ``schedule``)."""
    reboot_command: tuple[str, ...] = DEFAULT_REBOOT_COMMAND
    """See :class:`~patchwarden.policy.RolloutPolicy`."""
    simulate: Mapping[str, Any] = field(default_factory=dict)
    """Simulate backend options: ``seed``, ``failure_rate``, ``inject`` (host -> reason)."""

    @classmethod
    def from_policy(
        cls, policy: RolloutPolicy, ring_soak: dt.timedelta, **overrides: Any
    ) -> RolloutOptions:
        """Options from the policy's ``rollout:`` section (soak: its own, else the rings')."""
        soak = policy.soak if policy.soak is not None else ring_soak
        values: dict[str, Any] = {
            "max_failure_rate": policy.max_failure_rate,
            "max_concurrency": policy.max_concurrency,
            "soak_seconds": soak.total_seconds(),
            "restart_services": policy.restart_services,
            "reboot": policy.reboot,
            "reboot_command": policy.reboot_command,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict."""
        data = dataclasses.asdict(self)
        data["simulate"] = dict(self.simulate)
        data["reboot_command"] = list(self.reboot_command)
        return data


def create_rollout(
    store: Store,
    *,
    plan_id: int,
    options: RolloutOptions,
    actor: str,
    now: dt.datetime | None = None,
    only: Collection[str] | None = None,
) -> int:
    """Record a new rollout of plan ``plan_id``: one ``change`` row per change (``planned``,
    or ``skipped`` with the reason for changes that are not approved); audited.

    ``only`` limits the rollout to those change ids (the daemon runs the changes whose
    maintenance window is open); the others are skipped with reason ``not_due``.
    """
    now = now or utcnow()
    with store.transaction() as conn:
        plan = conn.execute(sa.select(t.plans.c.id).where(t.plans.c.id == plan_id)).first()
        if plan is None:
            raise NotFound(f"no plan {plan_id}")
        running = conn.execute(
            sa.select(t.rollouts.c.id).where(
                t.rollouts.c.plan_id == plan_id, t.rollouts.c.state == RolloutState.RUNNING.value
            )
        ).first()
        if running is not None:
            raise RolloutError(
                f"plan {plan_id} already has rollout {running.id} running "
                f"(`patchwarden rollout resume {running.id}` or `rollout abort {running.id}`)"
            )
        rid = conn.execute(
            t.rollouts.insert().values(
                plan_id=plan_id,
                state=RolloutState.RUNNING.value,
                backend=options.backend or "fleet",
                options=options.to_json(),
                created_by=actor,
                started_at=now,
                updated_at=now,
            )
        ).inserted_primary_key
        assert rid is not None
        rollout_id = int(rid[0])
        rows = []
        for c in conn.execute(sa.select(t.changes).where(t.changes.c.plan_id == plan_id)):
            if c.status == "approved" and (only is None or c.id in only):
                state, outcome = StepState.PLANNED, None
            elif c.status == "approved":
                state = StepState.SKIPPED
                outcome = {
                    "result": ChangeResult.SKIPPED.value,
                    "reason": SKIP_NOT_DUE,
                    "message": "approved, but its maintenance window is not open now",
                }
            else:
                state = StepState.SKIPPED
                outcome = {
                    "result": ChangeResult.SKIPPED.value,
                    "reason": SKIP_GOVERNANCE,
                    "message": f"change is {c.status}, not approved",
                }
            rows.append(
                {
                    "rollout_id": rollout_id,
                    "change_id": c.id,
                    "asset_id": c.asset_id,
                    "ring": c.ring,
                    "wave": c.wave,
                    "seq": 0,
                    "step": "change",
                    "state": state.value,
                    "outcome": outcome,
                    "finished_at": now if outcome else None,
                }
            )
        if rows:
            conn.execute(t.rollout_steps.insert(), rows)
        audit.append(
            conn,
            actor=actor,
            action=audit.Action.ROLLOUT_STEP,
            subject=f"rollout:{rollout_id}",
            inputs={"plan": plan_id, "options": options.to_json()},
            details={
                "event": "start",
                "plan": plan_id,
                "changes": len(rows),
                "skipped": [r["change_id"] for r in rows if r["state"] == StepState.SKIPPED],
            },
            at=now,
        )
    return rollout_id


def latest_rollout_id(store: Store) -> int | None:
    """The newest rollout's id."""
    with store.engine.connect() as conn:
        value = conn.execute(sa.select(sa.func.max(t.rollouts.c.id))).scalar_one()
    return None if value is None else int(value)


def _rollout_row(conn: sa.Connection, rollout_id: int) -> Any:
    row = conn.execute(sa.select(t.rollouts).where(t.rollouts.c.id == rollout_id)).first()
    if row is None:
        raise NotFound(f"no rollout {rollout_id}")
    return row


def _runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _runner_alive(runner: str | None) -> bool:
    if not runner:
        return False
    host, _, pid = runner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) is not running either.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def abort_rollout(
    store: Store, rollout_id: int, *, actor: str, now: dt.datetime | None = None
) -> None:
    """Mark a running rollout aborted (a running engine stops before its next change)."""
    now = now or utcnow()
    with store.transaction() as conn:
        row = _rollout_row(conn, rollout_id)
        if row.state != RolloutState.RUNNING:
            raise RolloutError(f"rollout {rollout_id} is {row.state}, not running")
        conn.execute(
            t.rollouts.update()
            .where(t.rollouts.c.id == rollout_id)
            .values(state=RolloutState.ABORTED.value, updated_at=now, finished_at=now,
                    halt_reason=f"aborted by {actor}")
        )  # fmt: skip
        audit.append(
            conn,
            actor=actor,
            action=audit.Action.ROLLOUT_STEP,
            subject=f"rollout:{rollout_id}",
            inputs={"rollout": rollout_id, "abort": True},
            details={"event": "abort"},
            at=now,
        )


# --------------------------------------------------------------------------- the engine


ExecutorFactory = Callable[[str, Mapping[str, Any], Mapping[str, Mapping[str, str]]], Executor]
"""(backend name, rollout options, simulated package table) -> executor."""


def default_executor(
    name: str, options: Mapping[str, Any], simulated: Mapping[str, Mapping[str, str]]
) -> Executor:
    """Build the executor named ``name`` (``ansible`` imported on use)."""
    concurrency = int(options.get("max_concurrency", 10))
    if name == "simulate":
        sim = dict(options.get("simulate") or {})
        return SimulatedExecutor(
            seed=int(sim.get("seed", 0)),
            failure_rate=float(sim.get("failure_rate", 0.0)),
            inject={h: Reason(r) for h, r in (sim.get("inject") or {}).items()},
            installed=simulated,
            max_concurrency=concurrency,
        )
    if name == "ansible":
        from patchwarden.execute.ansible import AnsibleExecutor

        ansible: Executor = AnsibleExecutor(max_concurrency=concurrency)
        return ansible
    from patchwarden.execute import BACKENDS

    try:
        cls = BACKENDS[name]
    except KeyError:
        raise RolloutError(
            f"unknown backend {name!r} (one of {', '.join([*BACKENDS, 'ansible'])})"
        ) from None
    return cls(max_concurrency=concurrency)


@dataclass(slots=True)
class _Ctx:
    store: Store
    rollout_id: int
    options: Mapping[str, Any]
    actor: str
    clock: Callable[[], dt.datetime]
    observer: RolloutObserver
    step_delay: float
    hosts: Mapping[str, Connection]
    factory: ExecutorFactory
    simulated: dict[str, dict[str, str]]
    executors: dict[str, Executor] = field(default_factory=dict)
    steps: dict[tuple[str, str], Any] = field(default_factory=dict)


async def run_rollout(
    store: Store,
    rollout_id: int,
    *,
    actor: str,
    clock: Callable[[], dt.datetime] = utcnow,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    observer: RolloutObserver | None = None,
    factory: ExecutorFactory = default_executor,
    step_delay: float = 0.0,
    force: bool = False,
) -> str:
    """Run (or resume) rollout ``rollout_id`` to its end; returns the final state.

    ``clock``/``sleep`` drive the soak wait (tests inject them); ``step_delay`` sleeps
    after each step is marked running (to test a kill inside a step). ``force`` resumes even
    though the recorded runner process still seems alive.
    """
    obs = observer or NullRolloutObserver()
    with store.transaction() as conn:
        row = _rollout_row(conn, rollout_id)
        if row.state != RolloutState.RUNNING:
            raise RolloutError(f"rollout {rollout_id} is {row.state}; only a running one resumes")
        if not force and _runner_alive(row.runner):
            raise RolloutError(
                f"rollout {rollout_id} is being run by {row.runner} (still alive); "
                "use --force if it is not"
            )
        conn.execute(
            t.rollouts.update().where(t.rollouts.c.id == rollout_id).values(runner=_runner())
        )
        options = dict(row.options)
        simulated = {h: dict(v) for h, v in (row.simulated or {}).items()}
        changes = [
            dict(r._mapping)
            for r in conn.execute(sa.select(t.changes).where(t.changes.c.plan_id == row.plan_id))
        ]
        steps = {
            (s.change_id, s.step): s
            for s in conn.execute(
                sa.select(t.rollout_steps).where(t.rollout_steps.c.rollout_id == rollout_id)
            )
        }
    ctx = _Ctx(
        store=store,
        rollout_id=rollout_id,
        options=options,
        actor=actor,
        clock=clock,
        observer=obs,
        step_delay=step_delay,
        hosts=load_hosts(store),
        factory=factory,
        simulated=simulated,
        steps=steps,
    )
    from patchwarden.plan.rings import Ring

    rank = {r.value: r.rank for r in Ring}
    changes = [c for c in changes if (c["id"], "change") in steps]
    changes.sort(key=lambda c: (rank.get(c["ring"], 9), c["wave"], c["asset_id"], c["id"]))
    waves: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for c in changes:
        waves.setdefault((c["ring"], c["wave"]), []).append(c)
    soak = dt.timedelta(seconds=float(options.get("soak_seconds", 0)))
    limit = asyncio.Semaphore(int(options.get("max_concurrency", 10)))
    try:
        for ring in sorted({c["ring"] for c in changes}, key=lambda r: rank.get(r, 9)):
            ring_waves = [k for k in waves if k[0] == ring]
            runnable = [
                c for k in ring_waves for c in waves[k] if _state(ctx, c["id"]) != StepState.SKIPPED
            ]
            if any(
                _state(ctx, c["id"]) in (StepState.PLANNED, StepState.RUNNING) for c in runnable
            ):
                await _soak(ctx, ring, rank, soak, sleep)
            for key in sorted(ring_waves, key=lambda k: k[1]):
                if _current_state(ctx) != RolloutState.RUNNING:
                    return _current_state(ctx)
                members = waves[key]
                done = sum(1 for c in members if _state(ctx, c["id"]) not in _OPEN)
                obs.wave(ring, key[1], len(members), done)

                async def one(c: dict[str, Any]) -> None:
                    async with limit:
                        await _run_change(ctx, c)

                await asyncio.gather(*(one(c) for c in members if _state(ctx, c["id"]) in _OPEN))
                halt = _halt_reason(ctx, ring, key[1], members)
                if halt is not None:
                    _finish(ctx, RolloutState.HALTED, halt)
                    obs.note(halt)
                    return RolloutState.HALTED.value
        if _current_state(ctx) != RolloutState.RUNNING:
            return _current_state(ctx)
        _finish(ctx, RolloutState.COMPLETED, None)
        return RolloutState.COMPLETED.value
    finally:
        for executor in ctx.executors.values():
            await executor.aclose()


_OPEN = (StepState.PLANNED, StepState.RUNNING)


def _state(ctx: _Ctx, change_id: str) -> StepState:
    return StepState(ctx.steps[(change_id, "change")].state)


def _current_state(ctx: _Ctx) -> RolloutState:
    with ctx.store.engine.connect() as conn:
        return RolloutState(_rollout_row(conn, ctx.rollout_id).state)


async def _soak(
    ctx: _Ctx,
    ring: str,
    rank: Mapping[str, int],
    soak: dt.timedelta,
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    """Wait until ``soak`` has passed since the last change of every earlier ring finished."""
    earlier = [
        s
        for (cid, name), s in ctx.steps.items()
        if name == "change"
        and rank.get(s.ring, 9) < rank.get(ring, 9)
        and s.state in (StepState.DONE, StepState.FAILED)
        and s.finished_at is not None
    ]
    if not earlier or soak.total_seconds() <= 0:
        return
    until = max(s.finished_at for s in earlier) + soak
    noted = False
    while True:
        remaining = (until - ctx.clock()).total_seconds()
        if remaining <= 0:
            return
        if not noted:
            ctx.observer.note(f"soaking until {until.isoformat()} before ring {ring}")
            noted = True
        if _current_state(ctx) != RolloutState.RUNNING:
            return
        await sleep(min(remaining, 5.0))


def _halt_reason(
    ctx: _Ctx, ring: str, wave: int, members: Sequence[Mapping[str, Any]]
) -> str | None:
    attempted = 0
    failed: list[str] = []
    for c in members:
        s = ctx.steps[(c["id"], "change")]
        if s.state == StepState.SKIPPED:
            continue
        outcome = s.outcome or {}
        if outcome.get("reason") == Reason.NOTHING_TO_DO:
            continue
        attempted += 1
        if s.state == StepState.FAILED:
            failed.append(f"{c['asset_id']}: {outcome.get('reason')}: {outcome.get('message', '')}")
    if not attempted:
        return None
    rate = len(failed) / attempted
    threshold = float(ctx.options.get("max_failure_rate", 0.2))
    if rate <= threshold:
        return None
    return (
        f"wave {wave} ({ring}): {len(failed)} of {attempted} changes failed "
        f"({rate:.0%} > max_failure_rate {threshold:.0%}); " + "; ".join(failed)
    )


def _finish(ctx: _Ctx, state: RolloutState, reason: str | None) -> None:
    now = ctx.clock()
    with ctx.store.transaction() as conn:
        conn.execute(
            t.rollouts.update()
            .where(t.rollouts.c.id == ctx.rollout_id, t.rollouts.c.state == RolloutState.RUNNING)
            .values(state=state.value, finished_at=now, updated_at=now, halt_reason=reason)
        )
        audit.append(
            conn,
            actor=ctx.actor,
            action=audit.Action.ROLLOUT_STEP,
            subject=f"rollout:{ctx.rollout_id}",
            inputs={"rollout": ctx.rollout_id, "state": state.value},
            details={"event": state.value, "reason": reason},
            at=now,
        )
    # Issue 6 section 2: the patch-failure model learns from every finished rollout.
    from patchwarden.learn.store import update_after_rollout

    update_after_rollout(ctx.store, ctx.rollout_id, now=now)


NO_CONNECTION = "no connection: block for this asset (rollout start --fleet FILE, or --backend)"
"""Why an asset cannot be reached: no stored ``connection:`` and no ``--backend``."""


def backend_name(connection: Connection | None, override: str | None) -> str | None:
    """The backend that reaches an asset: ``override`` (``--backend``), else its connection's."""
    return override or (connection.backend if connection else None)


def _executor(ctx: _Ctx, asset: str) -> tuple[Executor, Host] | str:
    connection = ctx.hosts.get(asset)
    backend = backend_name(connection, ctx.options.get("backend"))
    if backend is None:
        return f"{asset}: {NO_CONNECTION}"
    if backend not in ctx.executors:
        ctx.executors[backend] = ctx.factory(backend, ctx.options, ctx.simulated)
    host = host_for(asset, connection)
    if backend == "simulate" and not host.health:
        # One command check, so that an injected health failure shows.
        host = dataclasses.replace(host, health=(CommandCheck(argv=("true",)),))
    return ctx.executors[backend], host


def _mark_running(ctx: _Ctx, crow: Mapping[str, Any], name: str, seq: int) -> None:
    now = ctx.clock()
    key = (crow["id"], name)
    with ctx.store.transaction() as conn:
        existing = ctx.steps.get(key)
        if existing is None:
            conn.execute(
                t.rollout_steps.insert().values(
                    rollout_id=ctx.rollout_id,
                    change_id=crow["id"],
                    asset_id=crow["asset_id"],
                    ring=crow["ring"],
                    wave=crow["wave"],
                    seq=seq,
                    step=name,
                    state=StepState.RUNNING.value,
                    started_at=now,
                )
            )
        else:
            conn.execute(
                t.rollout_steps.update()
                .where(t.rollout_steps.c.id == existing.id)
                .values(state=StepState.RUNNING.value, started_at=now)
            )
        conn.execute(
            t.rollouts.update().where(t.rollouts.c.id == ctx.rollout_id).values(updated_at=now)
        )
        ctx.steps[key] = conn.execute(
            sa.select(t.rollout_steps).where(
                t.rollout_steps.c.rollout_id == ctx.rollout_id,
                t.rollout_steps.c.change_id == crow["id"],
                t.rollout_steps.c.step == name,
            )
        ).one()


def _action_for(name: str) -> audit.Action:
    if name.startswith("verify"):
        return audit.Action.VERIFY
    if name == "rollback":
        return audit.Action.ROLLBACK
    return audit.Action.ROLLOUT_STEP


def _mark_finished(
    ctx: _Ctx, crow: Mapping[str, Any], name: str, ok: bool, outcome: Mapping[str, Any]
) -> None:
    now = ctx.clock()
    key = (crow["id"], name)
    state = StepState.DONE if ok else StepState.FAILED
    with ctx.store.transaction() as conn:
        conn.execute(
            t.rollout_steps.update()
            .where(t.rollout_steps.c.id == ctx.steps[key].id)
            .values(state=state.value, outcome=dict(outcome), finished_at=now)
        )
        sim = next((e for e in ctx.executors.values() if isinstance(e, SimulatedExecutor)), None)
        values: dict[str, Any] = {"updated_at": now}
        if sim is not None:
            values["simulated"] = {h: dict(v) for h, v in sim.state.items()}
        conn.execute(t.rollouts.update().where(t.rollouts.c.id == ctx.rollout_id).values(**values))
        details = {
            k: v for k, v in outcome.items() if k not in {"stdout", "stderr", "results", "restart"}
        }
        audit.append(
            conn,
            actor=ctx.actor,
            action=_action_for(name),
            subject=f"change:{crow['id']}",
            inputs={"rollout": ctx.rollout_id, "change": crow["id"], "step": name},
            details={"asset": crow["asset_id"], "step": name, "state": state.value, **details},
            at=now,
        )
        ctx.steps[key] = conn.execute(
            sa.select(t.rollout_steps).where(t.rollout_steps.c.id == ctx.steps[key].id)
        ).one()


StepFn = Callable[[bool], Awaitable[tuple[bool, dict[str, Any]]]]


async def _do(
    ctx: _Ctx, crow: Mapping[str, Any], name: str, seq: int, fn: StepFn
) -> tuple[bool, dict[str, Any]]:
    """Run one step exactly once across crashes (see the module docstring)."""
    existing = ctx.steps.get((crow["id"], name))
    if existing is not None and existing.state in (StepState.DONE, StepState.FAILED):
        return existing.state == StepState.DONE, dict(existing.outcome or {})
    resumed = existing is not None and existing.state == StepState.RUNNING
    _mark_running(ctx, crow, name, seq)
    if ctx.step_delay:
        await asyncio.sleep(ctx.step_delay)
    ok, outcome = await fn(resumed)
    if resumed:
        outcome = {**outcome, "resumed": True}
    _mark_finished(ctx, crow, name, ok, outcome)
    return ok, outcome


async def _run_change(ctx: _Ctx, crow: Mapping[str, Any]) -> None:
    """Run one change's steps (resuming), then record its final outcome."""
    if _current_state(ctx) != RolloutState.RUNNING:
        return
    changes = exec_changes(crow["actions"])
    got = _executor(ctx, crow["asset_id"])
    _mark_running(ctx, crow, "change", 0)
    if isinstance(got, str):
        result = {"result": ChangeResult.FAILED.value, "reason": Reason.UNREACHABLE.value,
                  "message": got}  # fmt: skip
        _mark_finished(ctx, crow, "change", False, result)
        ctx.observer.change(crow["id"], result["result"], got)
        return
    executor, host = got
    outcome = await _change_steps(ctx, crow, executor, host, changes)
    result = _outcome_json(outcome)
    ok = isinstance(outcome, Applied) or (
        isinstance(outcome, Skipped) and outcome.reason is Reason.NOTHING_TO_DO
    )
    _mark_finished(ctx, crow, "change", ok, result)
    ctx.observer.change(crow["id"], result["result"], str(result.get("message", "")))


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    match outcome:
        case Applied():
            return {
                "result": ChangeResult.APPLIED.value,
                "installed": dict(outcome.installed),
                "restart": _restart_json(outcome.restart),
            }
        case RolledBack():
            return {
                "result": ChangeResult.ROLLED_BACK.value,
                "reason": outcome.reason.value,
                "message": outcome.message,
                "restored": dict(outcome.restored),
            }
        case Failed():
            return {
                "result": ChangeResult.FAILED.value,
                "reason": outcome.reason.value,
                "message": outcome.message,
            }
        case Skipped():
            return {
                "result": ChangeResult.SKIPPED.value,
                "reason": outcome.reason.value,
                "message": outcome.message,
            }


async def _change_steps(
    ctx: _Ctx, crow: Mapping[str, Any], executor: Executor, host: Host, changes: Sequence[Change]
) -> Outcome:
    name = host.name
    if not changes:
        return Skipped(host=name, reason=Reason.NOTHING_TO_DO, message="no changes")
    snapshots: dict[int, dict[str, str]] = {}
    verified: dict[int, str] = {}
    installed: dict[str, str] = {}
    failure: tuple[Reason, str] | None = None
    changed = False
    seq = 1
    for index, change in enumerate(changes):

        async def snap(_resumed: bool, change: Change = change) -> tuple[bool, dict[str, Any]]:
            r = await executor.step(host, snapshot_step(change, python=host.python), [])
            out = _result_json(r)
            if r.ok:
                out["versions"] = parse_listing(change, r.stdout)
            else:
                reason, message = _failure(r)
                if r.reason is None:
                    reason = Reason.SNAPSHOT_FAILED
                out.update(reason=reason.value, message=message)
            return r.ok, out

        ok, out = await _do(ctx, crow, f"snapshot:{index}", seq, snap)
        seq += 1
        if not ok:
            reason = Reason(out["reason"])
            if not changed:
                return Skipped(host=name, reason=reason, message=out["message"])
            failure = (reason, out["message"])
            break
        snapshots[index] = dict(out["versions"])

        async def apply(resumed: bool, change: Change = change) -> tuple[bool, dict[str, Any]]:
            if resumed:  # killed inside the apply: were the targets installed?
                check = await executor.step(
                    host, snapshot_step(change, python=host.python, kind=StepKind.VERIFY), []
                )
                if check.ok:
                    found = parse_listing(change, check.stdout)
                    if not _verify(change, found):
                        return True, {"found_applied": found, "rc": 0}
            r = await executor.step(
                host,
                install_step(change, change.targets, kind=StepKind.APPLY, python=host.python),
                [],
            )
            out = _result_json(r)
            if not r.ok:
                reason, message = _failure(r)
                out.update(reason=reason.value, message=message)
            return r.ok, out

        ok, out = await _do(ctx, crow, f"apply:{index}", seq, apply)
        seq += 1
        if ok or Reason(out["reason"]) not in NOT_STARTED_REASONS:
            changed = True  # a failed install may have half-done something
        if not ok:
            failure = (Reason(out["reason"]), out["message"])
            break

        async def verify(_resumed: bool, change: Change = change) -> tuple[bool, dict[str, Any]]:
            r = await executor.step(
                host, snapshot_step(change, python=host.python, kind=StepKind.VERIFY), []
            )
            out = _result_json(r)
            if not r.ok:
                reason, message = _failure(r)
                out.update(reason=reason.value, message=message)
                return False, out
            found = parse_listing(change, r.stdout)
            out["versions"] = found
            problem = _verify(change, found)
            if problem:
                out.update(reason=Reason.VERIFY_FAILED.value, message=problem)
                return False, out
            return True, out

        ok, out = await _do(ctx, crow, f"verify:{index}", seq, verify)
        seq += 1
        if not ok:
            failure = (Reason(out["reason"]), out["message"])
            break
        installed.update(out["versions"])
        verified[index] = str(out.get("stdout", ""))

    if failure is None and host.health:

        async def health(_resumed: bool) -> tuple[bool, dict[str, Any]]:
            done: list[StepResult] = []
            bad = await run_health_checks(executor, host, host.health, done)
            out: dict[str, Any] = {"results": [_result_json(r) for r in done]}
            if bad is not None:
                out.update(reason=Reason.HEALTH_CHECK_FAILED.value, message=bad)
                return False, out
            return True, out

        ok, out = await _do(ctx, crow, "health", seq, health)
        seq += 1
        if not ok:
            failure = (Reason(out["reason"]), out["message"])

    if failure is not None:
        reason, message = failure
        if not changed:
            return Failed(host=name, reason=reason, message=message)

        async def rollback(_resumed: bool) -> tuple[bool, dict[str, Any]]:
            done: list[StepResult] = []
            result = await executor.rollback(host, changes, snapshots, reason, message, done)
            out = _outcome_json(result)
            out["results"] = [_result_json(r) for r in done]
            return isinstance(result, RolledBack), out

        ok, out = await _do(ctx, crow, "rollback", 90, rollback)
        if ok:
            return RolledBack(
                host=name, reason=reason, message=message, restored=dict(out.get("restored", {}))
            )
        return Failed(
            host=name,
            reason=Reason(out.get("reason", Reason.ROLLBACK_FAILED)),
            message=str(out.get("message", message)),
        )

    report = RestartReport()
    if executor.restart_check:

        async def restart_check(_resumed: bool) -> tuple[bool, dict[str, Any]]:
            r = await executor.step(host, restart_scan_step(), [])
            out = _result_json(r)
            out["stdout"] = ""  # the scan's raw output can be large; the parsed report stays
            rep = parse_restart_scan(r.stdout) if r.ok else RestartReport()
            out["restart"] = _restart_json(rep)
            out["scanned"] = r.ok
            return True, out

        _, out = await _do(ctx, crow, "restart_check", seq, restart_check)
        seq += 1
        report = _report_from_json(out.get("restart") or {})
        units = list(report.units)
        if ctx.options.get("restart_services") and units:

            async def restart(_resumed: bool) -> tuple[bool, dict[str, Any]]:
                step = Step(kind=StepKind.RESTART, argv=("systemctl", "restart", *units),
                            become=True, description=f"restart {', '.join(units)}")  # fmt: skip
                r = await executor.step(host, step, [])
                out = _result_json(r)
                after = await executor.step(host, restart_scan_step(), [])
                rep = parse_restart_scan(after.stdout) if after.ok else report
                out["restart"] = _restart_json(rep)
                out["stdout"] = ""
                return r.ok, out

            _, out = await _do(ctx, crow, "restart", seq, restart)
            seq += 1
            report = _report_from_json(out.get("restart") or {})
        if ctx.options.get("reboot") == "schedule" and report.reboot_required:
            argv = tuple(ctx.options.get("reboot_command") or DEFAULT_REBOOT_COMMAND)

            async def reboot(_resumed: bool) -> tuple[bool, dict[str, Any]]:
                # Scheduled, not awaited: the findings stay pending restart (reboot) until a
                # restart check sees the new kernel running (`rollout restarts --check`).
                step = Step(kind=StepKind.REBOOT, argv=argv, become=True,
                            description=f"schedule reboot into {report.newest_kernel}")  # fmt: skip
                return (r := await executor.step(host, step, [])).ok, _result_json(r)

            await _do(ctx, crow, "reboot", seq, reboot)
            seq += 1

    async def rescan(_resumed: bool) -> tuple[bool, dict[str, Any]]:
        return True, _rescan(ctx, crow, changes, verified, report)

    await _do(ctx, crow, "rescan", seq, rescan)
    return Applied(host=name, installed=installed, restart=report)


def _report_from_json(data: Mapping[str, Any]) -> RestartReport:
    from patchwarden.execute.restart import StaleProcess

    return RestartReport(
        processes=tuple(
            StaleProcess(
                pid=p["pid"], command=p["command"], unit=p["unit"], files=tuple(p["files"])
            )
            for p in data.get("processes", [])
        ),
        running_kernel=data.get("running_kernel"),
        newest_kernel=data.get("newest_kernel"),
    )


# --------------------------------------------------------------------------- rescan


def _new_versions(change: Change, listing: str) -> dict[str, tuple[str, str | None, str | None]]:
    """name -> (version, source name, source version) from a verify listing."""
    versions = parse_listing(change, listing)
    out: dict[str, tuple[str, str | None, str | None]] = {}
    for line in listing.splitlines():
        cols = line.split("\t")
        if len(cols) >= 4 and cols[0] in versions and change.manager.value == "apt":
            out[cols[0]] = (versions[cols[0]], cols[2] or None, cols[3] or None)
    for name, version in versions.items():
        out.setdefault(name, (version, None, None))
    return out


def _rescan(
    ctx: _Ctx,
    crow: Mapping[str, Any],
    changes: Sequence[Change],
    verified: Mapping[int, str],
    report: RestartReport,
) -> dict[str, Any]:
    """Refresh the stored inventory with the verified versions, rescan, record pending restarts."""
    from patchwarden.service import PreparedInventory, scan

    store = ctx.store
    asset_id = crow["asset_id"]
    asset = store.get_asset(asset_id)
    if asset is None:
        return {"rescanned": False, "message": f"asset {asset_id!r} is not in the store"}
    with store.engine.connect() as conn:
        distro = conn.execute(
            sa.select(t.assets.c.distro).where(t.assets.c.id == asset_id)
        ).scalar_one()
        rows = store.stored_rows(conn, asset_id)
    updates: dict[tuple[str, str], tuple[str, str | None, str | None]] = {}
    for index, change in enumerate(changes):
        for name, new in _new_versions(change, verified.get(index, "")).items():
            updates[(change.ecosystem, name)] = new
    fresh: list[InventoryRow] = []
    replaced = 0
    for line, location, purl in rows:
        eco, name, version, src, srcver = line.split("\t")
        found = updates.get((eco, name))
        if found is not None and found[0] != version:
            new = found
            replaced += 1
            version = new[0]
            src = new[1] or src
            srcver = new[2] or (version if srcver else "")
            if purl:
                try:
                    purl = PackageURL.from_string(purl)._replace(version=version).to_string()
                except ValueError:
                    purl = None
        fresh.append(("\t".join((eco, name, version, src, srcver)), location, purl))
    fresh.sort()
    prepared = PreparedInventory(
        asset=asset,
        distro=distro,
        source=f"rollout:{ctx.rollout_id}",
        digest=inventory_digest([r[0] for r in fresh], distro),
        rows=InventoryColumns.of(fresh),
        packages=len(fresh),
        unsupported=0,
    )
    result = scan(store, [prepared], now=ctx.clock(), actor=ctx.actor)
    counts = result.assets[0].findings if result.assets else None
    closes = sorted({int(f) for a in crow["actions"] for f in a.get("findings", [])})
    resolved: list[int] = []
    with store.transaction() as conn:
        if closes:
            resolved = [
                r.id
                for r in conn.execute(
                    sa.select(t.findings.c.id).where(
                        t.findings.c.id.in_(closes), t.findings.c.resolved_at.is_not(None)
                    )
                )
            ]
        if report.pending and resolved:
            conn.execute(
                t.pending_restarts.insert(),
                [
                    {
                        "finding_id": f,
                        "asset_id": asset_id,
                        "rollout_id": ctx.rollout_id,
                        "units": list(report.units),
                        "reboot": report.reboot_required,
                        "since": ctx.clock(),
                    }
                    for f in resolved
                ],
            )
    return {
        "rescanned": True,
        "packages_updated": replaced,
        "findings": dataclasses.asdict(counts) if counts is not None else None,
        "resolved": resolved,
        "still_open": sorted(set(closes) - set(resolved)),
        "pending_restart": resolved if report.pending else [],
    }


def pending_restarts(store: Store, *, asset: str | None = None) -> list[dict[str, Any]]:
    """Findings fixed on disk whose old code still runs (uncleared ``pending_restarts``)."""
    p = t.pending_restarts
    query = (
        sa.select(p, t.findings.c.vulnerability, t.findings.c.package)
        .join(t.findings, t.findings.c.id == p.c.finding_id)
        .where(p.c.cleared_at.is_(None))
        .order_by(p.c.asset_id, p.c.finding_id)
    )
    if asset is not None:
        query = query.where(p.c.asset_id == asset)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def clear_pending_restarts(
    store: Store, asset: str, report: RestartReport, *, actor: str, now: dt.datetime | None = None
) -> int:
    """Clear an asset's pending restarts when ``report`` (a fresh restart check) is clean."""
    if report.pending:
        return 0
    now = now or utcnow()
    p = t.pending_restarts
    with store.transaction() as conn:
        cleared = list(
            conn.execute(
                sa.select(p.c.finding_id).where(p.c.asset_id == asset, p.c.cleared_at.is_(None))
            ).scalars()
        )
        n = conn.execute(
            p.update().where(p.c.asset_id == asset, p.c.cleared_at.is_(None)).values(cleared_at=now)
        ).rowcount
        if cleared:  # resolved only now that the fixed code is the code that runs
            conn.execute(
                t.findings.update()
                .where(t.findings.c.id.in_(cleared), t.findings.c.resolved_at.is_not(None))
                .values(resolved_at=now)
            )
        if n:
            audit.append(
                conn,
                actor=actor,
                action=audit.Action.VERIFY,
                subject=asset,
                inputs={"asset": asset, "restart_check": "clean"},
                details={"pending_restarts_cleared": n},
                at=now,
            )
    return int(n or 0)


async def check_pending_restarts(
    store: Store,
    *,
    actor: str,
    assets: Collection[str] | None = None,
    backend: str | None = None,
    factory: ExecutorFactory = default_executor,
) -> list[dict[str, Any]]:
    """Run the restart check on every asset with pending restarts; clear the clean ones.

    Each asset is reached through its stored ``connection:`` (``rollout start --fleet``), or
    ``backend`` for all. One row per asset: ``state`` is ``cleared`` (the fixed code is the code
    that runs now: its findings are resolved), ``pending`` (old code still runs: ``units`` and
    ``reboot`` say what must restart) or ``error`` (the check could not run: ``message``).
    """
    pending = pending_restarts(store)
    per_asset: dict[str, int] = {}
    for p in pending:
        if assets is None or p["asset_id"] in assets:
            per_asset[p["asset_id"]] = per_asset.get(p["asset_id"], 0) + 1
    hosts = load_hosts(store)
    executors: dict[str, Executor] = {}
    results: list[dict[str, Any]] = []
    try:
        for asset in sorted(per_asset):
            row: dict[str, Any] = {"asset": asset, "findings": per_asset[asset]}
            connection = hosts.get(asset)
            name = backend_name(connection, backend)
            if name is None:
                row |= {"state": "error", "message": NO_CONNECTION}
                results.append(row)
                continue
            if name not in executors:
                executors[name] = factory(name, {}, {})
            result = await executors[name].step(
                host_for(asset, connection), restart_scan_step(), []
            )
            if not result.ok:
                reason = result.reason.value if result.reason else "failed"
                detail = (result.message or result.stderr or result.stdout).strip()[-500:]
                row |= {"state": "error", "message": f"restart check {reason}: {detail}".strip()}
                results.append(row)
                continue
            report = parse_restart_scan(result.stdout)
            cleared = clear_pending_restarts(store, asset, report, actor=actor)
            row |= {
                "state": "pending" if report.pending else "cleared",
                "cleared": cleared,
                "units": list(report.units),
                "reboot": report.reboot_required,
                "processes": [f"{p.pid} {p.command}" for p in report.processes],
            }
            results.append(row)
    finally:
        for executor in executors.values():
            await executor.aclose()
    return results


# --------------------------------------------------------------------------- status


def rollout_status(store: Store, rollout_id: int | None = None) -> dict[str, Any]:
    """A rollout (default: the newest) with its changes' outcomes and step counts."""
    rid = rollout_id if rollout_id is not None else latest_rollout_id(store)
    if rid is None:
        raise NotFound("no rollout yet (run `patchwarden rollout start`)")
    with store.engine.connect() as conn:
        row = _rollout_row(conn, rid)
        steps = list(
            conn.execute(
                sa.select(t.rollout_steps)
                .where(t.rollout_steps.c.rollout_id == rid)
                .order_by(t.rollout_steps.c.change_id, t.rollout_steps.c.seq)
            )
        )
    changes: dict[str, dict[str, Any]] = {}
    for s in steps:
        if s.step == "change":
            changes[s.change_id] = {
                "change": s.change_id,
                "asset": s.asset_id,
                "ring": s.ring,
                "wave": s.wave,
                "state": s.state,
                **(s.outcome or {}),
                "steps": [],
            }
    for s in steps:
        if s.step != "change" and s.change_id in changes:
            changes[s.change_id]["steps"].append(
                {
                    "step": s.step,
                    "state": s.state,
                    "reason": (s.outcome or {}).get("reason"),
                    "started_at": s.started_at.isoformat() if s.started_at else None,
                    "finished_at": s.finished_at.isoformat() if s.finished_at else None,
                }
            )
    counts: dict[str, int] = {}
    for c in changes.values():
        key = str(c.get("result") or c["state"])
        counts[key] = counts.get(key, 0) + 1
    ordered = sorted(changes.values(), key=lambda c: (c["ring"], c["wave"], c["asset"]))
    return {
        "id": row.id,
        "plan": row.plan_id,
        "state": row.state,
        "backend": row.backend,
        "started_at": row.started_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "halt_reason": row.halt_reason,
        "runner": row.runner,
        "options": row.options,
        "counts": counts,
        "changes": ordered,
        "pending_restarts": [
            {"finding": p["finding_id"], "asset": p["asset_id"],
             "vulnerability": p["vulnerability"], "units": p["units"], "reboot": p["reboot"]}
            for p in pending_restarts(store)
            if p["rollout_id"] == rid
        ],
    }  # fmt: skip


def dry_run(store: Store, plan_id: int, backend: str | None) -> list[dict[str, Any]]:
    """The exact commands per change, in rollout order, without running anything."""
    from patchwarden.execute.interface import full_argv
    from patchwarden.execute.steps import plan_host
    from patchwarden.plan.rings import Ring

    rank = {r.value: r.rank for r in Ring}
    hosts = load_hosts(store)
    with store.engine.connect() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(sa.select(t.changes).where(t.changes.c.plan_id == plan_id))
        ]
    if not rows:
        raise NotFound(f"plan {plan_id} has no changes")
    rows.sort(key=lambda c: (rank.get(c["ring"], 9), c["wave"], c["asset_id"]))
    out: list[dict[str, Any]] = []
    for c in rows:
        connection = hosts.get(c["asset_id"])
        host = host_for(c["asset_id"], connection)
        changes = exec_changes(c["actions"])
        out.append(
            {
                "change": c["id"],
                "asset": c["asset_id"],
                "ring": c["ring"],
                "wave": c["wave"],
                "status": c["status"],
                "backend": backend or (connection.backend if connection else None),
                "commands": [
                    {"step": s.kind.value, "command": shlex.join(full_argv(host, s))}
                    for s in plan_host(changes, python=host.python)
                ],
            }
        )
    return out
