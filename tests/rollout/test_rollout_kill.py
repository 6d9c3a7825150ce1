"""kill -9 in the middle of a rollout, then ``rollout resume``: the same end state as one run.

``patchwarden rollout start`` runs as a real subprocess (simulate backend, each step sleeping
0.15 s after it is marked running, so the kill lands inside a step); it is SIGKILLed once some
changes are done, and ``rollout resume`` finishes it. An uninterrupted rollout of an identical
store is the reference.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.pw_testkit import rollout_progress

from patchwarden import audit
from patchwarden.store import Store
from patchwarden.store import schema as t

ASSETS = ["k1", "k2", "k3", "k4", "k5"]


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "patchwarden", *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _final(env: dict[str, str]) -> dict[str, Any]:
    store = Store.open(env["PATCHWARDEN_DB"])
    try:
        with store.engine.connect() as conn:
            rollout = conn.execute(sa.select(t.rollouts)).one()
            steps = sorted(
                (r.change_id.split("/", 1)[1], r.step, r.state)
                for r in conn.execute(sa.select(t.rollout_steps))
            )
            findings = sorted(
                (r.asset_id, r.package, r.vulnerability, r.resolved_at is not None)
                for r in conn.execute(sa.select(t.findings))
            )
        entries = audit.entries(store)
        finished = [
            (e.subject, details["step"])
            for e in entries
            if e.action in {audit.Action.ROLLOUT_STEP, audit.Action.VERIFY, audit.Action.ROLLBACK}
            and "step" in (details := json.loads(e.details))
        ]
        return {
            "state": rollout.state,
            "simulated": rollout.simulated,
            "steps": steps,
            "findings": findings,
            "audit_ok": audit.verify(store).ok,
            "finished_steps": finished,
        }
    finally:
        store.close()


@pytest.mark.slow
def test_kill_9_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path, env_factory: Callable[..., dict[str, str]]
) -> None:
    (tmp_path / "ref").mkdir()
    (tmp_path / "kill").mkdir()
    ref = env_factory(tmp_path / "ref", ASSETS)
    victim = env_factory(tmp_path / "kill", ASSETS)

    proc = _cli(ref, "rollout", "start", "--backend", "simulate", "-q")
    assert proc.wait(120) == 0

    proc = _cli(victim, "rollout", "start", "--backend", "simulate", "-q", "--step-delay", "0.15")
    deadline = time.monotonic() + 60
    while True:
        done, applying = rollout_progress(victim["PATCHWARDEN_DB"])
        if done >= 2 and applying:
            break
        assert proc.poll() is None, "the rollout finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    killed = _final(victim)
    assert killed["state"] == "running"
    assert any(
        step.startswith("apply") and state == "running" for _, step, state in killed["steps"]
    )  # killed inside an apply step

    resume = _cli(victim, "rollout", "resume", "-q")
    assert resume.wait(120) == 0

    a, b = _final(ref), _final(victim)
    assert b["state"] == a["state"] == "completed"
    assert b["simulated"] == a["simulated"]
    assert b["steps"] == a["steps"]
    assert b["findings"] == a["findings"]
    assert all(resolved for *_, resolved in b["findings"])
    assert a["audit_ok"]
    assert b["audit_ok"]
    # nothing done twice: every step is audited as finished exactly once
    assert len(b["finished_steps"]) == len(set(b["finished_steps"]))
    assert len(b["finished_steps"]) == len(a["finished_steps"]) > 5 * len(ASSETS)
