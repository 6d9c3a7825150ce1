"""The SSVC deployer table: every CSV row round-trips through decide()."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from patchwarden.model import Environment
from patchwarden.risk.ssvc import (
    TABLE,
    Automatable,
    Decision,
    Exploitation,
    HumanImpact,
    SystemExposure,
    decide,
    human_impact,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "ssvc"
BUNDLED = (
    Path(__file__).resolve().parents[2]
    / "src/patchwarden/risk/data/deployer_patch_application_priority_1_0_0.csv"
)
SPELLING = {"public poc": "public_poc", "very high": "very_high", "out-of-cycle": "out_of_cycle"}


def _rows() -> list[list[str]]:
    with BUNDLED.open(newline="") as f:
        return list(csv.reader(f))[1:]


def test_bundled_table_is_verbatim() -> None:
    shared = SHARED / BUNDLED.name
    if not shared.exists():
        pytest.fail(f"shared data missing: {shared}")
    assert BUNDLED.read_bytes() == shared.read_bytes()


def test_table_has_every_combination() -> None:
    assert len(_rows()) == 72
    assert len(TABLE) == 3 * 3 * 2 * 4


@pytest.mark.parametrize("row", _rows(), ids=lambda r: r[0])
def test_every_row_round_trips(row: list[str]) -> None:
    _, e, x, a, h, d = (SPELLING.get(v, v) for v in row)
    got = decide(Exploitation(e), SystemExposure(x), Automatable(a), HumanImpact(h))
    assert got is Decision(d)


def test_decision_never_drops_with_worse_inputs() -> None:
    # A sanity property of the published table that the ranking relies on.
    for (e, x, a, h), d in TABLE.items():
        for e2 in list(Exploitation)[list(Exploitation).index(e) :]:
            assert decide(e2, x, a, h).rank >= d.rank


@pytest.mark.parametrize("env", list(Environment))
def test_human_impact_monotone(env: Environment) -> None:
    for c in range(1, 6):
        for s in range(1, 6):
            level = list(HumanImpact).index(human_impact(c, s, env))
            if c < 5:
                assert list(HumanImpact).index(human_impact(c + 1, s, env)) >= level
            if s < 5:
                assert list(HumanImpact).index(human_impact(c, s + 1, env)) >= level
