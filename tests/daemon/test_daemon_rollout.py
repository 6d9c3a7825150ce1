"""The daemon's rollout step runs the approved changes whose maintenance window is open now."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.pw_testkit import write_pypi_bom

from patchwarden import audit
from patchwarden.daemon import DaemonConfig, Job, step_handlers
from patchwarden.govern import create_plan
from patchwarden.policy import load_policy
from patchwarden.service import import_feeds
from patchwarden.store import Store

PYPA = Path(__file__).resolve().parents[1] / "data" / "e2e" / "pypa"
POLICY = """\
version: 1
windows:
  hourly:
    rrule: "FREQ=MINUTELY;INTERVAL=30"
    duration: 2h
    timezone: UTC
rings: {canary: 1, pilot: 1, soak: 0m}
gates:
  - name: everything
    decision: auto_approve
rollout: {max_failure_rate: 0.5, soak: 0m}
"""


def _fleet(tmp_path: Path) -> Path:
    lines = ["assets:"]
    for name in ("d1", "d2"):
        bom = write_pypi_bom(tmp_path / f"{name}.json", None, {"urllib3": "1.24.1"})
        lines += [
            f"  - name: {name}",
            f"    inventory: {{sbom: {bom}}}",
            "    connection: {backend: simulate}",
        ]
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("\n".join(lines) + "\n")
    return fleet


def test_rollout_step_runs_what_is_due_and_resumes_its_own(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(POLICY)
    store = Store.open(f"sqlite:///{tmp_path / 'pw.db'}")
    try:
        import_feeds(store, [PYPA])
        config = DaemonConfig(fleet=_fleet(tmp_path), policy=policy_file)
        handlers = step_handlers(store, config, lambda _m: None)
        job = Job(id="c1:scan", cycle="c1", step="scan", attempt=1, owner="w")
        assert handlers["scan"](job)["assets"] == 2
        # planned 90 minutes ago: the canary's slot is open now, the pilot's starts later
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=90)
        stored, _ = create_plan(store, load_policy(policy_file), actor="planner", now=past)
        assert {c["status"] for c in stored.changes} == {"approved"}
        rollout = Job(id="c1:rollout", cycle="c1", step="rollout", attempt=1, owner="w")
        result = handlers["rollout"](rollout)
        assert result["changes"] == 1
        assert result["state"] == "completed"
        again = handlers["rollout"](rollout)  # a re-run of the same job resumes, not repeats
        assert again == {"rollout": result["rollout"], "state": "completed", "resumed": True}
        open_by_asset = {f.asset for f in store.findings()}
        assert len(open_by_asset) == 1  # the canary is patched; the pilot waits for its window
        assert audit.verify(store).ok
    finally:
        store.close()
