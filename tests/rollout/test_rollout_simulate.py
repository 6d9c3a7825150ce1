"""The rollout engine on the simulate backend: order, soak, governance, halt, rollback, resume.

The plans come from real PyPA advisories (urllib3 1.24.1, jinja2 2.10 on every asset); the
simulated hosts start at the plan's installed versions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from patchwarden import audit
from patchwarden.cli.main import app
from patchwarden.execute.rollout import RolloutOptions, create_rollout, run_rollout
from patchwarden.govern import get_plan
from patchwarden.store import Store
from patchwarden.store import schema as t

runner = CliRunner()
EnvFactory = Callable[..., dict[str, str]]
ASSETS = ["a1", "a2", "a3", "a4"]


def _status(env: dict[str, str]) -> dict[str, object]:
    result = runner.invoke(app, ["rollout", "status", "--json"], env=env)
    assert result.exit_code == 0, result.stdout
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_rollout_applies_every_ring_and_resolves_findings(
    tmp_path: Path, env_factory: EnvFactory
) -> None:
    env = env_factory(tmp_path, ASSETS)
    result = runner.invoke(app, ["rollout", "start", "--backend", "simulate", "-q"], env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    status = _status(env)
    assert status["state"] == "completed"
    changes = status["changes"]
    assert isinstance(changes, list)
    assert {c["result"] for c in changes} == {"applied"}
    assert {c["asset"] for c in changes} == set(ASSETS)
    for c in changes:
        names = [s["step"] for s in c["steps"]]
        assert names[:3] == ["snapshot:0", "apply:0", "verify:0"]
        assert "rescan" in names
        assert all(s["state"] == "done" for s in c["steps"])
        assert c["installed"].keys() == {"urllib3", "jinja2"}
    findings = json.loads(runner.invoke(app, ["findings", "--json"], env=env).stdout)
    assert findings == [] or all(f.get("resolved_at") for f in findings)
    store = Store.open(env["PATCHWARDEN_DB"])
    try:
        assert audit.verify(store).ok
        actions = [e.action for e in audit.entries(store)]
        assert actions.count(audit.Action.VERIFY) == len(ASSETS)
        # rings ran in order: every canary step finished before any broad step started
        with store.engine.connect() as conn:
            rows = list(conn.execute(sa.select(t.rollout_steps)))
        rank = {"canary": 0, "pilot": 1, "broad": 2}
        ends = {r.ring: max(x.finished_at for x in rows if x.ring == r.ring) for r in rows}
        starts = {
            r.ring: min(x.started_at for x in rows if x.ring == r.ring and x.started_at)
            for r in rows
        }
        for a, end in ends.items():
            for b, start in starts.items():
                if rank[a] < rank[b]:
                    assert end <= start
    finally:
        store.close()


def test_soak_is_waited_with_an_injected_clock(tmp_path: Path, env_factory: EnvFactory) -> None:
    env = env_factory(tmp_path, ASSETS)
    store = Store.open(env["PATCHWARDEN_DB"])
    now = [dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)]
    slept: list[float] = []

    def clock() -> dt.datetime:
        return now[0]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += dt.timedelta(seconds=seconds)

    try:
        plan = get_plan(store)
        rid = create_rollout(
            store,
            plan_id=plan.id,
            options=RolloutOptions(backend="simulate", soak_seconds=600),
            actor="bob",
            now=now[0],
        )
        state = asyncio.run(run_rollout(store, rid, actor="bob", clock=clock, sleep=sleep))
        assert state == "completed"
        with store.engine.connect() as conn:
            rows = list(
                conn.execute(sa.select(t.rollout_steps).where(t.rollout_steps.c.step == "change"))
            )
        by_ring: dict[str, list[sa.Row[object]]] = {}
        for r in rows:
            by_ring.setdefault(r.ring, []).append(r)
        assert set(by_ring) == {"canary", "pilot", "broad"}
        order = ["canary", "pilot", "broad"]
        for prev, nxt in itertools.pairwise(order):
            prev_end = max(r.finished_at for r in by_ring[prev])
            next_start = min(r.started_at for r in by_ring[nxt])
            assert next_start >= prev_end + dt.timedelta(seconds=600)
        assert sum(slept) >= 1200  # two soaks of ten minutes, waited on the injected clock
    finally:
        store.close()


def test_health_failure_halts_the_wave_and_rolls_back(
    tmp_path: Path, env_factory: EnvFactory
) -> None:
    env = env_factory(tmp_path, ASSETS)
    plan = json.loads(runner.invoke(app, ["plan", "show", "--json"], env=env).stdout)
    broad = sorted(c["asset_id"] for c in plan["changes"] if c["ring"] == "broad")
    victim = broad[0]
    result = runner.invoke(
        app,
        ["rollout", "start", "--backend", "simulate", "-q",
         "--sim-fail", f"{victim}=health_check_failed"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 3, result.stdout
    status = _status(env)
    assert status["state"] == "halted"
    assert victim in str(status["halt_reason"])
    assert "health" in str(status["halt_reason"])
    by_asset = {c["asset"]: c for c in status["changes"]}  # type: ignore[attr-defined]
    assert by_asset[victim]["result"] == "rolled_back"
    assert by_asset[victim]["reason"] == "health_check_failed"
    assert by_asset[victim]["restored"] == {"urllib3": "1.24.1", "jinja2": "2.10"}
    text = runner.invoke(app, ["rollout", "status"], env=env).stdout
    assert "halted" in text
    assert "health_check_failed" in text
    store = Store.open(env["PATCHWARDEN_DB"])
    try:
        with store.engine.connect() as conn:
            sim = conn.execute(sa.select(t.rollouts.c.simulated)).scalar_one()
        assert sim[victim] == {"urllib3": "1.24.1", "jinja2": "2.10"}
        assert audit.Action.ROLLBACK in [e.action for e in audit.entries(store)]
        assert audit.verify(store).ok
    finally:
        store.close()


def test_unreachable_host_below_the_threshold_lets_the_wave_proceed(
    tmp_path: Path, env_factory: EnvFactory
) -> None:
    env = env_factory(tmp_path, ["b1", "b2", "b3", "b4", "b5", "b6"], max_failure_rate=0.5)
    plan = json.loads(runner.invoke(app, ["plan", "show", "--json"], env=env).stdout)
    broad = sorted(c["asset_id"] for c in plan["changes"] if c["ring"] == "broad")
    result = runner.invoke(
        app,
        ["rollout", "start", "--backend", "simulate", "-q",
         "--sim-fail", f"{broad[0]}=unreachable"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 3  # completed, with a failure
    status = _status(env)
    assert status["state"] == "completed"
    by_asset = {c["asset"]: c for c in status["changes"]}  # type: ignore[attr-defined]
    assert by_asset[broad[0]]["result"] == "skipped"  # never reached: nothing changed
    assert by_asset[broad[0]]["reason"] == "unreachable"
    assert all(by_asset[a]["result"] == "applied" for a in broad[1:])


def test_unapproved_changes_are_skipped_with_the_reason(
    tmp_path: Path, env_factory: EnvFactory
) -> None:
    env = env_factory(tmp_path, ["c1", "c2"])
    plan = json.loads(runner.invoke(app, ["plan", "show", "--json"], env=env).stdout)
    target = plan["changes"][0]["id"]
    store = Store.open(env["PATCHWARDEN_DB"])
    try:
        with store.transaction() as conn:
            conn.execute(
                t.changes.update().where(t.changes.c.id == target).values(status="rejected")
            )
    finally:
        store.close()
    result = runner.invoke(app, ["rollout", "start", "--backend", "simulate", "-q"], env=env)
    assert result.exit_code == 0, result.stdout
    by_id = {c["change"]: c for c in _status(env)["changes"]}  # type: ignore[attr-defined]
    assert by_id[target]["state"] == "skipped"
    assert by_id[target]["reason"] == "governance"
    assert "rejected" in by_id[target]["message"]


def test_dry_run_prints_commands_and_changes_nothing(
    tmp_path: Path, env_factory: EnvFactory
) -> None:
    env = env_factory(tmp_path, ["d1"])
    result = runner.invoke(app, ["rollout", "start", "--dry-run", "--json"], env=env)
    assert result.exit_code == 0, result.stdout
    rows = json.loads(result.stdout)
    commands = [c["command"] for c in rows[0]["commands"]]
    assert any("-m pip install" in c and "urllib3==" in c for c in commands)
    assert runner.invoke(app, ["rollout", "status"], env=env).exit_code == 2
