"""End to end: simulated rollouts through the real engine teach the model which patch fails.

Ten hosts run only urllib3 1.24.1 (package A) and ten only jinja2 2.10 (package B), scanned
against the real PyPA advisories of ``tests/data/e2e/pypa``. Each of five rollouts runs on the
simulate backend with failures injected per host from a seeded draw at the package's rate
(A 40 %, B 2 %; the reasons are the simulator's patch failures: disk full, package not found,
verify failed, health check failed). Between rollouts the hosts are rescanned with the old
versions, so every rollout patches the whole fleet again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from tests.pw_testkit import write_pypi_bom
from typer.testing import CliRunner

from patchwarden.cli.main import app
from patchwarden.execute.interface import Reason
from patchwarden.execute.rollout import RolloutOptions, create_rollout, run_rollout
from patchwarden.govern import get_plan
from patchwarden.learn.store import current_model, outcome_records
from patchwarden.store import Store
from patchwarden.store import schema as t

DATA = Path(__file__).resolve().parents[1] / "data" / "e2e" / "pypa"
NOW = dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)
RATES = {"urllib3": 0.40, "jinja2": 0.02}
VERSIONS = {"urllib3": "1.24.1", "jinja2": "2.10"}
HOSTS = {f"{pkg[0]}{i}": pkg for pkg in RATES for i in range(10)}
PATCH_FAILURES = (
    Reason.DISK_FULL,
    Reason.PACKAGE_NOT_FOUND,
    Reason.VERIFY_FAILED,
    Reason.HEALTH_CHECK_FAILED,
)
ROLLOUTS = 5

TRAIN_POLICY = """\
version: 1
rings: {canary: 1, pilot: 2, soak: 1h}
gates:
  - name: everything
    decision: auto_approve
rollout: {max_failure_rate: 1.0, soak: 0m}
learn: {min_observations: 20}
"""

GATED_POLICY = """\
version: 1
rings: {canary: 1, pilot: 2, soak: 1h}
gates:
  - name: unlikely to fail
    when: {predicted_failure_below: 0.15}
    decision: auto_approve
learn: {min_observations: 20, canary_threshold: 0.25}
"""

runner = CliRunner()


def _cli(env: dict[str, str], *args: str) -> str:
    result = runner.invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def _scan_all(env: dict[str, str], tmp: Path) -> None:
    for host, pkg in HOSTS.items():
        sbom = write_pypi_bom(tmp / f"{host}.json", host, {pkg: VERSIONS[pkg]})
        _cli(env, "scan", "--sbom", str(sbom))


def _inject(rollout: int) -> dict[str, str]:
    out = {}
    for host, pkg in HOSTS.items():
        rng = random.Random(f"{rollout}:{host}")
        if rng.random() < RATES[pkg]:
            out[host] = rng.choice(PATCH_FAILURES).value
    return out


def test_rollouts_teach_the_model_and_plans_use_it(tmp_path: Path) -> None:
    policy = tmp_path / "train.yaml"
    policy.write_text(TRAIN_POLICY)
    env = {
        "PATCHWARDEN_DB": str(tmp_path / "pw.db"),
        "PATCHWARDEN_POLICY": str(policy),
        "PATCHWARDEN_ACTOR": "bob",
    }
    _cli(env, "feeds", "import", str(DATA))
    injected = 0
    for k in range(1, ROLLOUTS + 1):
        _scan_all(env, tmp_path)
        now = NOW + dt.timedelta(days=k)
        _cli(env, "plan", "--now", now.isoformat(), "--json")
        store = Store.open(env["PATCHWARDEN_DB"])
        try:
            stored = get_plan(store)
            assert len(stored.changes) == len(HOSTS)
            inject = _inject(k)
            injected += len(inject)
            rid = create_rollout(
                store,
                plan_id=stored.id,
                options=RolloutOptions(
                    backend="simulate", soak_seconds=0, max_failure_rate=1.0,
                    simulate={"seed": k, "inject": inject},
                ),
                actor="bob",
                now=now,
            )  # fmt: skip
            ticks = iter(now + dt.timedelta(seconds=s) for s in range(100_000))
            clock: Callable[[], dt.datetime] = functools.partial(next, ticks)
            state = asyncio.run(run_rollout(store, rid, actor="bob", clock=clock))
            assert state == "completed"
            # the engine refitted the model when the rollout ended
            trained = current_model(store)
            assert trained is not None
            assert trained.trigger == f"rollout:{rid}"
            assert trained.observations == k * len(HOSTS)
        finally:
            store.close()

    store = Store.open(env["PATCHWARDEN_DB"])
    try:
        records = outcome_records(store)
        assert len(records) == ROLLOUTS * len(HOSTS)
        assert sum(r.failed for r in records) == injected
        with store.engine.connect() as conn:
            fits = conn.execute(sa.select(sa.func.count()).select_from(t.learn_models)).scalar()
        assert fits == ROLLOUTS
    finally:
        store.close()

    # A new plan under a policy whose gate auto-approves only unlikely failures.
    _scan_all(env, tmp_path)
    gated = tmp_path / "gated.yaml"
    gated.write_text(GATED_POLICY)
    env["PATCHWARDEN_POLICY"] = str(gated)
    now = NOW + dt.timedelta(days=ROLLOUTS + 1)
    plan: dict[str, Any] = json.loads(_cli(env, "plan", "--now", now.isoformat(), "--json"))
    assert plan["summary"]["model"]["used"] is True
    by_pkg: dict[str, list[dict[str, Any]]] = {"urllib3": [], "jinja2": []}
    for c in plan["changes"]:
        (action,) = c["actions"]
        pred = action["predicted_failure"]
        assert pred["level"] in {"package", "jump"}
        assert pred["basis"].startswith(pred["level"])
        by_pkg[action["package"]].append({**c, "p": pred["probability"]})
    a_probs = [c["p"] for c in by_pkg["urllib3"]]
    b_probs = [c["p"] for c in by_pkg["jinja2"]]
    assert min(a_probs) > max(b_probs)  # A ranks above B
    assert min(a_probs) > 0.25  # learn.canary_threshold
    assert max(b_probs) < 0.15  # the gate's predicted_failure_below
    print(json.dumps({"A": sorted(set(a_probs)), "B": sorted(set(b_probs))}))
    assert {c["status"] for c in by_pkg["jinja2"]} == {"approved"}
    assert {c["status"] for c in by_pkg["urllib3"]} == {"pending_approval"}
    assert all("unlikely to fail" in c["gate_rule"] for c in by_pkg["jinja2"])
    # above learn.canary_threshold: every A change goes to the (larger) canary ring
    assert {c["ring"] for c in by_pkg["urllib3"]} == {"canary"}
    assert all("canary" in c["gate_rule"] for c in by_pkg["urllib3"])

    # learn predict shows the basis
    action_id = by_pkg["urllib3"][0]["actions"][0]["id"]
    predicted = json.loads(_cli(env, "learn", "predict", action_id, "--json"))
    assert predicted["probability"] == by_pkg["urllib3"][0]["p"]
    assert predicted["features"]["package"] == "urllib3"
    assert predicted["path"][0]["level"] == "global"
    assert predicted["path"][-1]["trials"] >= 1

    # the HTML timeline shows the prediction
    html = tmp_path / "plan.html"
    _cli(env, "plan", "show", "--html", str(html))
    assert "P(fail)" in html.read_text()

    # calibration on held-out rollouts against the base rate
    out = tmp_path / "report"
    report = json.loads(_cli(env, "learn", "report", "--out", str(out), "--json"))
    png = out / "reliability.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["test"] > 0
    assert report["split"].startswith("by rollout")
    assert report["beats_baseline"], report["verdict"]
    assert report["brier"] < report["baseline"]["brier"]
    assert report["log_loss"] < report["baseline"]["log_loss"]
    assert json.loads((out / "calibration.json").read_text())["brier"] == report["brier"]
    print(json.dumps({k: report[k] for k in ("split", "train", "test", "brier", "log_loss",
                                            "baseline", "verdict")}))  # fmt: skip
