"""``patchwarden daemon``: run the pipeline on a schedule from a job table in the database.

Every ``interval`` a *cycle* is due; its key is the start of its time slot (``2026-01-30T12:00Z``
for a 6-hour interval), so every worker that looks at the clock enqueues the same cycle and the
insert of its jobs (ids ``<cycle>:<step>``) is idempotent. A cycle's steps run in order:

``sync`` (download and import the feeds) -> ``scan`` (rescan the fleet file) -> ``score``
(re-score open findings with the policy) -> ``plan`` (a new plan) -> ``rollout`` (run what is
approved inside its windows).

**Exactly once.** A worker claims a job with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL)
and a compare-and-set ``UPDATE`` (state, lease) whose row count must be 1, so two workers never
hold the same job. The claim is a *lease* (``lease_expires``) that a heartbeat thread renews;
when a worker dies its lease runs out and another worker takes the job over (``attempts`` + 1).
Completion is fenced by ``(lease_owner, attempts)``: a worker that lost its lease cannot mark
the job done. Steps are idempotent, so a step re-run after a crash has the effect of one run:
sync is conditional, scan merges findings, score only reads, and plan looks for the plan its
own job id made before making one. On SQLite (no row locks, one writer at a time) the
compare-and-set alone keeps the guarantee; run one worker there.

The ``rollout`` step runs, with the rollout engine (``patchwarden.execute.rollout``), the
approved changes of the newest plan whose maintenance window is open at that moment; the
others are recorded as skipped (``not_due``) and wait for a later cycle.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from patchwarden.errors import PatchwardenError
from patchwarden.store import Store
from patchwarden.store import schema as t

Log = Callable[[str], None]


class Step(StrEnum):
    """The steps of one cycle, in the order they run."""

    SYNC = "sync"
    SCAN = "scan"
    SCORE = "score"
    PLAN = "plan"
    ROLLOUT = "rollout"


class JobState(StrEnum):
    """A job's life: queued -> running -> done | failed (running -> queued on a retry)."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


FINISHED = (JobState.DONE.value, JobState.FAILED.value)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def cycle_key(now: dt.datetime, interval: dt.timedelta) -> str:
    """The key of the cycle due at ``now``: the start of its slot, in UTC.

    >>> import datetime as dt
    >>> cycle_key(dt.datetime(2026, 1, 30, 13, 7, tzinfo=dt.UTC), dt.timedelta(hours=6))
    '2026-01-30T12:00:00Z'
    """
    seconds = int(interval.total_seconds())
    if seconds <= 0:
        raise ValueError(f"interval must be positive, got {interval}")
    epoch = int(now.timestamp())
    start = dt.datetime.fromtimestamp(epoch - epoch % seconds, dt.UTC)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_interval(text: str) -> dt.timedelta:
    """``90s``, ``15m``, ``6h``, ``1d`` (or plain seconds) as a timedelta.

    >>> parse_interval("6h"), parse_interval("90")
    (datetime.timedelta(seconds=21600), datetime.timedelta(seconds=90))
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in units else (raw, "s")
    try:
        value = float(number)
    except ValueError as exc:
        raise ValueError(f"not an interval: {text!r} (use 90s, 15m, 6h or 1d)") from exc
    if value <= 0:
        raise ValueError(f"interval must be positive: {text!r}")
    return dt.timedelta(seconds=value * units[unit])


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A claimed job: the row's identity plus the fencing token (owner, attempt)."""

    id: str
    cycle: str
    step: str
    attempt: int
    owner: str


class JobQueue:
    """The ``jobs`` table seen by one worker (``owner``)."""

    def __init__(
        self,
        store: Store,
        *,
        owner: str | None = None,
        lease: dt.timedelta = dt.timedelta(minutes=5),
        max_attempts: int = 3,
    ) -> None:
        self.store = store
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = lease
        self.max_attempts = max_attempts
        self.postgres = store.engine.dialect.name == "postgresql"

    def enqueue_cycle(
        self, cycle: str, steps: Sequence[str], now: dt.datetime | None = None
    ) -> int:
        """Queue ``steps`` of ``cycle`` in order; jobs that exist already are left alone.

        Returns how many jobs were new (0 when another worker queued the cycle first).
        """
        now = now or _now()
        if not steps:
            return 0
        rows = [
            {
                "id": f"{cycle}:{step}",
                "cycle": cycle,
                "step": step,
                "seq": index,
                "after": f"{cycle}:{steps[index - 1]}" if index else None,
                "state": JobState.QUEUED.value,
                "attempts": 0,
                "created_at": now,
            }
            for index, step in enumerate(steps)
        ]
        insert = (postgresql.insert if self.postgres else sqlite.insert)(t.jobs)
        stmt = (
            insert.values(rows).on_conflict_do_nothing(index_elements=["id"]).returning(t.jobs.c.id)
        )
        with self.store.transaction() as conn:
            return len(conn.execute(stmt).all())

    def _claimable(self, now: dt.datetime) -> sa.ColumnElement[bool]:
        prev = t.jobs.alias("prev")
        return sa.and_(
            sa.or_(
                t.jobs.c.state == JobState.QUEUED.value,
                sa.and_(
                    t.jobs.c.state == JobState.RUNNING.value,
                    t.jobs.c.lease_expires < now,
                ),
            ),
            sa.or_(
                t.jobs.c.after.is_(None),
                t.jobs.c.after.in_(sa.select(prev.c.id).where(prev.c.state.in_(FINISHED))),
            ),
        )

    def claim(self, now: dt.datetime | None = None) -> Job | None:
        """Take the oldest runnable job (its predecessor finished) under a fresh lease."""
        for _ in range(16):
            now = now or _now()
            with self.store.transaction() as conn:
                query = (
                    sa.select(t.jobs.c.id, t.jobs.c.cycle, t.jobs.c.step, t.jobs.c.attempts)
                    .where(self._claimable(now))
                    .order_by(t.jobs.c.cycle, t.jobs.c.seq)
                    .limit(1)
                )
                if self.postgres:
                    query = query.with_for_update(skip_locked=True, of=t.jobs)
                row = conn.execute(query).first()
                if row is None:
                    return None
                if row.attempts >= self.max_attempts:
                    # Its workers died max_attempts times: stop taking it over.
                    conn.execute(
                        t.jobs.update()
                        .where(t.jobs.c.id == row.id, self._claimable(now))
                        .values(
                            state=JobState.FAILED.value,
                            finished_at=now,
                            lease_owner=None,
                            error=f"gave up after {row.attempts} attempts (lease expired)",
                        )
                    )
                    continue
                # Compare-and-set: on SQLite (no row locks) a concurrent claimer loses here.
                done = conn.execute(
                    t.jobs.update()
                    .where(
                        t.jobs.c.id == row.id,
                        t.jobs.c.attempts == row.attempts,
                        self._claimable(now),
                    )
                    .values(
                        state=JobState.RUNNING.value,
                        attempts=row.attempts + 1,
                        lease_owner=self.owner,
                        lease_expires=now + self.lease,
                        started_at=now,
                    )
                ).rowcount
                if done == 1:
                    return Job(
                        id=row.id,
                        cycle=row.cycle,
                        step=row.step,
                        attempt=row.attempts + 1,
                        owner=self.owner,
                    )
        return None

    def _fenced(self, job: Job) -> sa.ColumnElement[bool]:
        return sa.and_(
            t.jobs.c.id == job.id,
            t.jobs.c.lease_owner == job.owner,
            t.jobs.c.attempts == job.attempt,
            t.jobs.c.state == JobState.RUNNING.value,
        )

    def heartbeat(self, job: Job, now: dt.datetime | None = None) -> bool:
        """Extend the lease; False when the job is no longer ours."""
        now = now or _now()
        with self.store.transaction() as conn:
            return (
                conn.execute(
                    t.jobs.update().where(self._fenced(job)).values(lease_expires=now + self.lease)
                ).rowcount
                == 1
            )

    def complete(self, job: Job, result: Mapping[str, Any], now: dt.datetime | None = None) -> bool:
        """Mark the job done with its result; False when the lease was lost meanwhile."""
        now = now or _now()
        with self.store.transaction() as conn:
            return (
                conn.execute(
                    t.jobs.update()
                    .where(self._fenced(job))
                    .values(
                        state=JobState.DONE.value,
                        finished_at=now,
                        lease_expires=None,
                        result=dict(result),
                        error=None,
                    )
                ).rowcount
                == 1
            )

    def fail(self, job: Job, error: str, now: dt.datetime | None = None) -> bool:
        """Record a failed attempt: queued again while attempts remain, else failed."""
        now = now or _now()
        final = job.attempt >= self.max_attempts
        with self.store.transaction() as conn:
            return (
                conn.execute(
                    t.jobs.update()
                    .where(self._fenced(job))
                    .values(
                        state=(JobState.FAILED if final else JobState.QUEUED).value,
                        finished_at=now if final else None,
                        lease_owner=None,
                        lease_expires=None,
                        error=error,
                    )
                ).rowcount
                == 1
            )

    def cycle_finished(self, cycle: str) -> bool:
        """True when every job of ``cycle`` is done or failed (and there is at least one)."""
        with self.store.engine.connect() as conn:
            states = [
                r.state
                for r in conn.execute(sa.select(t.jobs.c.state).where(t.jobs.c.cycle == cycle))
            ]
        return bool(states) and all(s in FINISHED for s in states)

    def jobs(self, cycle: str | None = None) -> list[dict[str, Any]]:
        """Job rows (of one cycle), in order."""
        query = sa.select(t.jobs).order_by(t.jobs.c.cycle, t.jobs.c.seq)
        if cycle is not None:
            query = query.where(t.jobs.c.cycle == cycle)
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


Handler = Callable[[Job], Mapping[str, Any]]
"""Runs one step; returns its result (stored as JSON). It must be idempotent."""


class _Heartbeat:
    """Renews a job's lease every third of the lease while the step runs."""

    def __init__(self, queue: JobQueue, job: Job) -> None:
        self.queue, self.job = queue, job
        self.stop = threading.Event()
        self.lost = False
        self.thread = threading.Thread(target=self._run, name=f"lease {job.id}", daemon=True)

    def _run(self) -> None:
        period = max(self.queue.lease.total_seconds() / 3, 0.05)
        while not self.stop.wait(period):
            try:
                if not self.queue.heartbeat(self.job):
                    self.lost = True
                    return
            except Exception:
                continue

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def run_job(queue: JobQueue, job: Job, handlers: Mapping[str, Handler], log: Log) -> JobState:
    """Run a claimed job under its heartbeat and record the outcome."""
    handler = handlers.get(job.step)
    log(f"{queue.owner}: {job.id} attempt {job.attempt} started")
    try:
        if handler is None:
            raise PatchwardenError(f"job {job.id}: no handler for step {job.step!r}")
        with _Heartbeat(queue, job):
            result = handler(job)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        queue.fail(job, message)
        log(f"{queue.owner}: {job.id} failed: {message}")
        return JobState.FAILED
    if queue.complete(job, result):
        log(f"{queue.owner}: {job.id} done")
        return JobState.DONE
    log(f"{queue.owner}: {job.id} finished after its lease was taken over; result dropped")
    return JobState.FAILED


@dataclass(slots=True, kw_only=True)
class WorkerStats:
    """What one worker did."""

    owner: str
    ran: list[str] = field(default_factory=list)


def run_worker(
    queue: JobQueue,
    handlers: Mapping[str, Handler],
    *,
    steps: Sequence[str],
    interval: dt.timedelta,
    stop: threading.Event,
    once: bool = False,
    poll: float = 1.0,
    log: Log = lambda _m: None,
    clock: Callable[[], dt.datetime] = _now,
) -> WorkerStats:
    """Queue each due cycle and run jobs until ``stop`` is set (or, ``once``, the first
    cycle this worker saw due has finished)."""
    stats = WorkerStats(owner=queue.owner)
    first = cycle_key(clock(), interval)
    while not stop.is_set():
        cycle = cycle_key(clock(), interval)
        if not once or cycle == first:
            queue.enqueue_cycle(cycle, steps)
        job = queue.claim()
        if job is not None:
            run_job(queue, job, handlers, log)
            stats.ran.append(job.id)
            continue
        if once and queue.cycle_finished(first):
            break
        stop.wait(poll)
    return stats


# --------------------------------------------------------------------------- the real steps


@dataclass(frozen=True, slots=True, kw_only=True)
class DaemonConfig:
    """What the daemon's steps work on."""

    fleet: Path | None = None
    """The fleet file to rescan (no rescan without one)."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Feed source URL overrides (name -> URL)."""
    only: tuple[str, ...] = ()
    """Sync only these sources (default: every default source)."""
    cache_dir: Path = Path(".")
    """Where downloaded feed files are kept."""
    policy: Path | None = None
    """The policy file (risk weights, plan rules); built-in defaults without one."""
    http_timeout: float = 60.0


def step_handlers(store: Store, config: DaemonConfig, log: Log) -> dict[str, Handler]:
    """The real pipeline steps, each idempotent."""
    from patchwarden.collect import scan_fleet, start_workers
    from patchwarden.execute.rollout import (
        RolloutOptions,
        RolloutState,
        create_rollout,
        run_rollout,
        save_hosts,
    )
    from patchwarden.govern import create_plan, get_plan, latest_plan_id, prioritised
    from patchwarden.intel.sync import Syncer, sources_from
    from patchwarden.inventory.fleet import load_fleet
    from patchwarden.policy import Policy, load_policy

    def policy() -> Policy:
        return load_policy(config.policy) if config.policy else Policy.default()

    def sync(job: Job) -> dict[str, Any]:
        syncer = Syncer(store, config.cache_dir, timeout=config.http_timeout, actor="daemon")
        try:
            report = syncer.sync(sources_from(config.sources, config.only))
        finally:
            syncer.close()
        for s in report.sources:
            if s.message:
                log(f"{job.id}: {s.name}: {s.outcome.value}: {s.message}")
        return {s.name: {"outcome": s.outcome.value, "message": s.message} for s in report.sources}

    def rescan(job: Job) -> dict[str, Any]:
        if config.fleet is None:
            return {"skipped": "no fleet file"}
        start_workers()  # its start-up overlaps loading the fleet file
        fleet = load_fleet(config.fleet, cache=store)
        report = scan_fleet(store, fleet, weights=policy().risk)
        return {
            "assets": len(report.assets),
            "new": sum(a.findings.new for a in report.assets),
            "resolved": sum(a.findings.resolved for a in report.assets),
            "errors": report.errors,
        }

    def score(job: Job) -> dict[str, Any]:
        prio = prioritised(store, policy())
        return {
            "active": len(prio.active),
            "excepted": len(prio.excepted),
            "top": [
                {"finding": s.finding.id, "score": round(s.risk.score, 4)} for s in prio.active[:5]
            ],
        }

    def plan(job: Job) -> dict[str, Any]:
        actor = f"daemon:{job.id}"
        with store.engine.connect() as conn:
            existing = conn.execute(
                sa.select(t.plans.c.id).where(t.plans.c.created_by == actor)
            ).scalar()
        if existing is not None:
            return {"plan": int(existing), "reused": True}
        stored, _plan = create_plan(store, policy(), actor=actor)
        return {"plan": stored.id, "changes": len(stored.changes), "reused": False}

    def rollout(job: Job) -> dict[str, Any]:
        """Run the approved changes of the newest plan whose maintenance window is open now.

        Idempotent: a re-run of the same job resumes the rollout it started instead of
        starting another one.
        """
        actor = f"daemon:{job.id}"
        with store.engine.connect() as conn:
            started = conn.execute(
                sa.select(t.rollouts.c.id, t.rollouts.c.state).where(
                    t.rollouts.c.created_by == actor
                )
            ).first()
        if started is not None:
            state = started.state
            if state == RolloutState.RUNNING.value:
                state = asyncio.run(run_rollout(store, started.id, actor=actor))
            return {"rollout": started.id, "state": state, "resumed": True}
        pid = latest_plan_id(store)
        if pid is None:
            return {"skipped": "no plan"}
        now = dt.datetime.now(dt.UTC)
        due = [
            c["id"]
            for c in get_plan(store, pid).changes
            if c["status"] == "approved"
            and c["slot_start"] is not None
            and c["slot_start"] <= now < c["slot_end"]
        ]
        if not due:
            return {"plan": pid, "due": 0}
        if config.fleet is not None:
            save_hosts(store, load_fleet(config.fleet, cache=store))
        pol = policy()
        rid = create_rollout(
            store,
            plan_id=pid,
            options=RolloutOptions.from_policy(pol.rollout, pol.plan.rings.soak),
            actor=actor,
            only=due,
        )
        state = asyncio.run(run_rollout(store, rid, actor=actor))
        log(f"{job.id}: rollout {rid} of plan {pid}: {state} ({len(due)} changes due)")
        return {"rollout": rid, "plan": pid, "state": state, "changes": len(due)}

    return {
        Step.SYNC.value: sync,
        Step.SCAN.value: rescan,
        Step.SCORE.value: score,
        Step.PLAN.value: plan,
        Step.ROLLOUT.value: rollout,
    }


def run_daemon(
    store: Store,
    config: DaemonConfig,
    *,
    interval: dt.timedelta,
    workers: int = 1,
    once: bool = False,
    lease: dt.timedelta = dt.timedelta(minutes=5),
    poll: float = 5.0,
    log: Log = lambda _m: None,
    stop: threading.Event | None = None,
) -> list[WorkerStats]:
    """Run ``workers`` worker threads until ``stop`` (or, ``once``, one cycle)."""
    stop = stop or threading.Event()
    handlers = step_handlers(store, config, log)
    steps = [s.value for s in Step]
    results: list[WorkerStats] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            stats = _work()
        except Exception as exc:
            log(f"worker stopped: {type(exc).__name__}: {exc}")
            raise
        with lock:
            results.append(stats)

    def _work() -> WorkerStats:
        return run_worker(
            JobQueue(store, lease=lease),
            handlers,
            steps=steps,
            interval=interval,
            stop=stop,
            once=once,
            poll=poll,
            log=log,
        )

    threads = [threading.Thread(target=work, name=f"worker-{i}") for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
