"""benchmarks/simulate.py on the real data subset of tests/data/bench (see its README.md):
calendar helpers, determinism, and what the policies must show."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from patchwarden.model import Environment

ROOT = Path(__file__).resolve().parents[2]

if TYPE_CHECKING:
    from benchmarks import simulate as sim
else:
    _spec = importlib.util.spec_from_file_location(
        "benchmarks.simulate", ROOT / "benchmarks" / "simulate.py"
    )
    sim = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = sim
    _spec.loader.exec_module(sim)

DATA = Path(__file__).resolve().parents[1] / "data" / "bench"
ARGS = [
    "--kev", str(DATA / "kev-2026.01.29-subset.json"),
    "--epss", str(DATA / "epss-2026-01-30-subset.csv"),
    "--oval", str(DATA / "noble-oval-subset.xml"),
    "--pypa", str(DATA / "pypa"),
]  # fmt: skip


def test_patch_tuesday_and_windows() -> None:
    # 2025-01-01 is day 0; second Tuesday of January 2025 is the 14th (day 13), 18:00
    assert sim.patch_tuesday(0.0) == 13 + 18 / 24
    assert sim.patch_tuesday(13.8) == 41 + 18 / 24  # February 11th
    host = sim.Host(id=0, service=0, environment=Environment.PROD, window_day=0, window_hour=2)
    # first Monday is 2025-01-06 (day 5)
    assert sim.next_window(host, 0.0, sim.Config()) == 5 + 2 / 24
    assert sim.next_window(host, 5 + 3 / 24, sim.Config()) == 12 + 2 / 24


def test_run_is_deterministic_and_shows_the_tradeoffs(tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        code = sim.main([*ARGS, "--services", "20", "--disclosures", "150", "--p-bad", "0.2",
                         "--out", str(tmp_path / name)])  # fmt: skip
        assert code == 0
        outs.append(json.loads((tmp_path / name / "simulate.json").read_text()))
    assert outs[0] == outs[1]
    res = {r["policy"]: r for r in outs[0]["results"]}
    assert set(res) == {"monthly", "cvss_auto", "patchwarden"}
    assert outs[0]["bad_patches"] > 0
    assert len({r["findings"] for r in res.values()}) == 1
    pw, monthly = res["patchwarden"], res["monthly"]
    # canaries with halt-on-failure: fewer hosts hit by bad patches, no full-service outage
    assert pw["hosts_hit_by_bad_patch"] < monthly["hosts_hit_by_bad_patch"]
    assert pw["service_outage_hours"] == 0 < monthly["service_outage_hours"]
    assert pw["failed_deployments"] < monthly["failed_deployments"]
    # SLA-driven: KEV vulnerabilities are closed faster than by the monthly cycle
    if outs[0]["kev_disclosures"]:
        assert pw["kev_exposure_days"] < monthly["kev_exposure_days"]
    for r in res.values():
        assert 0 <= r["fixed"] <= r["findings"]
        assert r["mttp_restricted_mean_days"] <= 90


def test_bad_arguments(tmp_path: Path) -> None:
    assert sim.main([*ARGS, "--p-bad", "1.5", "--out", str(tmp_path)]) == 2
    missing = [*ARGS[:2], "--epss", str(tmp_path / "nope.csv"), *ARGS[4:], "--out", str(tmp_path)]
    assert sim.main(missing) == 2
