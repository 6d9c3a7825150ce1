"""A daemon worker in its own process, for the crash test (run as a script, never imported).

``python daemon_worker_script.py DB_URL LEASE_SECONDS SLEEP_SECONDS``: claims one job and runs
its ``work`` step, which records ``started`` and, after SLEEP_SECONDS, its effect (keyed by
the job id, so a second run of the same job adds nothing).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from patchwarden.daemon import Job, JobQueue, run_job
from patchwarden.store import Store


def work_step(store: Store, pause: float) -> Any:
    """The ``work`` handler: mark started, wait, then write the effect once per job id."""

    def handler(job: Job) -> Mapping[str, Any]:
        with store.transaction() as conn:
            conn.execute(
                sa.text("INSERT INTO effects_started (job, owner) VALUES (:j, :o)"),
                {"j": job.id, "o": job.owner},
            )
        time.sleep(pause)
        with store.transaction() as conn:
            conn.execute(
                sa.text("INSERT INTO effects (job) VALUES (:j) ON CONFLICT (job) DO NOTHING"),
                {"j": job.id},
            )
        return {"by": job.owner}

    return handler


if __name__ == "__main__":
    url, lease, pause = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    store = Store.open(url)
    queue = JobQueue(store, owner="doomed", lease=dt.timedelta(seconds=lease))
    job = queue.claim()
    if job is None:
        sys.exit(1)
    run_job(queue, job, {"work": work_step(store, pause)}, lambda m: None)
