"""The daemon's job queue against the real PostgreSQL server: each job runs exactly once
with N concurrent workers, and a SIGKILLed worker's job is taken over after its lease."""

from __future__ import annotations

import datetime as dt
import importlib.util
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from patchwarden.daemon import Job, JobQueue, JobState, cycle_key, run_worker
from patchwarden.store import Store

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "daemon_worker_script.py"


def _script_module() -> Any:
    spec = importlib.util.spec_from_file_location("daemon_worker_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def pg_store(db_url: str) -> Iterator[Store]:
    store = Store.open(db_url)
    with store.transaction() as conn:
        conn.execute(
            sa.text("CREATE TABLE runs (job TEXT NOT NULL, owner TEXT NOT NULL, n SERIAL)")
        )
        conn.execute(sa.text("CREATE TABLE effects (job TEXT PRIMARY KEY)"))
        conn.execute(sa.text("CREATE TABLE effects_started (job TEXT NOT NULL, owner TEXT)"))
    yield store
    store.close()


def _count(store: Store, sql: str) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.text(sql)))


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_eight_workers_run_each_job_exactly_once_in_order(pg_store: Store) -> None:
    steps = ["sync", "scan", "score", "plan", "rollout"]
    cycles = [f"2026-01-{d:02d}T00:00:00Z" for d in range(1, 11)]
    JobQueue(pg_store).enqueue_cycle(cycles[0], steps)
    for cycle in cycles:  # every worker would enqueue too: inserts are idempotent
        assert JobQueue(pg_store).enqueue_cycle(cycle, steps) == (0 if cycle == cycles[0] else 5)

    def record(job: Job) -> Mapping[str, Any]:
        with pg_store.transaction() as conn:
            conn.execute(
                sa.text("INSERT INTO runs (job, owner) VALUES (:j, :o)"),
                {"j": job.id, "o": job.owner},
            )
        time.sleep(0.01)
        return {"ok": True}

    handlers = dict.fromkeys(steps, record)
    stop = threading.Event()
    stats: list[list[str]] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        queue = JobQueue(pg_store, owner=f"w{i}", lease=dt.timedelta(seconds=30))
        # An interval whose current slot is one of no test cycle: only the queued ones run.
        s = run_worker(
            queue,
            handlers,
            steps=[],
            interval=dt.timedelta(days=3650),
            stop=stop,
            poll=0.02,
        )
        with lock:
            stats.append(s.ran)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(
        JobQueue(pg_store).cycle_finished(c) for c in cycles
    ):
        time.sleep(0.05)
    stop.set()
    for th in threads:
        th.join(10)
    runs = _count(pg_store, "SELECT job, count(*) FROM runs GROUP BY job")
    assert len(runs) == 50
    assert {n for _, n in runs} == {1}
    assert sorted(j for ran in stats for j in ran) == sorted(j for j, _ in runs)
    assert len({o for (o,) in _count(pg_store, "SELECT DISTINCT owner FROM runs")}) > 1
    rows = JobQueue(pg_store).jobs()
    assert {r["state"] for r in rows} == {JobState.DONE.value}
    assert {r["attempts"] for r in rows} == {1}
    # Within a cycle, a step starts only after its predecessor finished.
    order = {j: n for j, _o, n in _count(pg_store, "SELECT job, owner, n FROM runs")}
    for cycle in cycles:
        for prev, step in itertools.pairwise(steps):
            # runs.n is a sequence: the predecessor's effect committed first.
            assert order[f"{cycle}:{prev}"] < order[f"{cycle}:{step}"]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_killed_worker_job_is_taken_over_after_its_lease(pg_store: Store, db_url: str) -> None:
    JobQueue(pg_store).enqueue_cycle("2026-01-30T00:00:00Z", ["work"])
    lease = 1.5
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, str(SCRIPT), db_url, str(lease), "60"], env=env)
    try:
        deadline = time.monotonic() + 15
        while not _count(pg_store, "SELECT 1 FROM effects_started"):
            assert time.monotonic() < deadline, "the worker subprocess never started its job"
            assert proc.poll() is None, "the worker subprocess exited early"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = dt.datetime.now(dt.UTC)
    survivor = JobQueue(pg_store, owner="survivor", lease=dt.timedelta(seconds=lease))
    (row,) = survivor.jobs()
    assert row["state"] == JobState.RUNNING.value
    assert row["lease_owner"] == "doomed"
    # Not claimable while the dead worker's lease still runs.
    assert survivor.claim() is None
    handler = _script_module().work_step(pg_store, 0.0)
    stop = threading.Event()
    timer = threading.Timer(15, stop.set)
    timer.start()
    stats = run_worker(
        survivor,
        {"work": handler},
        steps=["work"],  # re-enqueueing the same cycle is a no-op
        interval=dt.timedelta(days=1),
        stop=stop,
        once=True,
        poll=0.1,
        clock=lambda: dt.datetime(2026, 1, 30, 12, tzinfo=dt.UTC),
    )
    timer.cancel()
    assert not stop.is_set(), "the survivor did not finish the cycle in time"
    assert stats.ran == ["2026-01-30T00:00:00Z:work"]
    (row,) = survivor.jobs()
    assert row["state"] == JobState.DONE.value
    assert row["attempts"] == 2
    assert row["lease_owner"] == "survivor"
    assert row["started_at"] >= killed_at - dt.timedelta(seconds=1)
    started = _count(pg_store, "SELECT owner FROM effects_started ORDER BY owner")
    assert [o for (o,) in started] == ["doomed", "survivor"]
    assert len(_count(pg_store, "SELECT job FROM effects")) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_lost_lease_cannot_complete_and_failures_are_bounded(pg_store: Store) -> None:
    q1 = JobQueue(pg_store, owner="a", lease=dt.timedelta(seconds=1), max_attempts=2)
    q2 = JobQueue(pg_store, owner="b", lease=dt.timedelta(seconds=1), max_attempts=2)
    t0 = dt.datetime(2026, 1, 30, tzinfo=dt.UTC)
    q1.enqueue_cycle("c", ["x"], now=t0)
    first = q1.claim(now=t0)
    assert first is not None
    assert q2.claim(now=t0) is None
    second = q2.claim(now=t0 + dt.timedelta(seconds=2))  # a's lease ran out
    assert second is not None
    assert second.attempt == 2
    assert not q1.complete(first, {"late": True})  # fenced: a lost the job
    assert not q1.heartbeat(first)
    assert q2.fail(second, "boom")  # the last attempt: failed, not re-queued
    (row,) = q1.jobs()
    assert row["state"] == JobState.FAILED.value
    assert row["error"] == "boom"
    assert q1.cycle_finished("c")


def test_cycle_keys_are_slot_starts() -> None:
    six = dt.timedelta(hours=6)
    a = cycle_key(dt.datetime(2026, 1, 30, 12, 0, tzinfo=dt.UTC), six)
    b = cycle_key(dt.datetime(2026, 1, 30, 17, 59, 59, tzinfo=dt.UTC), six)
    assert a == b == "2026-01-30T12:00:00Z"
