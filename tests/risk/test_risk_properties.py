"""Hypothesis invariants of the score: monotone in its inputs, deterministic, shares sum to 1."""

from __future__ import annotations

import dataclasses
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from patchwarden.model import Environment, Severity
from patchwarden.risk.cvss import parse_cvss
from patchwarden.risk.model import RiskInput, score

VECTORS = [
    None,
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N",
]
_prob = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)

inputs = st.builds(
    RiskInput,
    vulnerability=st.just("CVE-2024-0001"),
    cvss=st.sampled_from(VECTORS).map(lambda v: parse_cvss("CVSS_V3", v) if v else None),
    severity=st.sampled_from(list(Severity)),
    kev=st.booleans(),
    kev_ransomware=st.booleans(),
    epss=st.one_of(st.none(), _prob),
    epss_percentile=st.one_of(st.none(), _prob),
    fix_available=st.booleans(),
    environment=st.sampled_from(list(Environment)),
    criticality=st.integers(1, 5),
    internet_exposed=st.booleans(),
    data_sensitivity=st.integers(1, 5),
    tags=st.lists(st.sampled_from(["waf", "isolated", "segmented", "pci"]), max_size=3).map(tuple),
)


def _le(a: float, b: float) -> bool:
    return a <= b * (1 + 1e-12)


@settings(max_examples=300)
@given(inputs, _prob)
def test_raising_epss_never_lowers(inp: RiskInput, higher: float) -> None:
    if inp.epss is None or higher < inp.epss:
        return
    assert _le(score(inp).score, score(dataclasses.replace(inp, epss=higher)).score)


@settings(max_examples=300)
@given(inputs)
def test_adding_kev_or_exposure_never_lowers(inp: RiskInput) -> None:
    base = score(dataclasses.replace(inp, kev=False)).score
    assert _le(base, score(dataclasses.replace(inp, kev=True)).score)
    kev = score(dataclasses.replace(inp, kev=True, kev_ransomware=False)).score
    assert _le(kev, score(dataclasses.replace(inp, kev=True, kev_ransomware=True)).score)
    hidden = score(dataclasses.replace(inp, internet_exposed=False))
    exposed = score(dataclasses.replace(inp, internet_exposed=True))
    assert _le(hidden.score, exposed.score)
    assert hidden.ssvc.rank <= exposed.ssvc.rank


@settings(max_examples=300)
@given(inputs)
def test_raising_criticality_or_sensitivity_never_lowers(inp: RiskInput) -> None:
    s = score(inp).score
    if inp.criticality < 5:
        assert _le(s, score(dataclasses.replace(inp, criticality=inp.criticality + 1)).score)
    if inp.data_sensitivity < 5:
        up = dataclasses.replace(inp, data_sensitivity=inp.data_sensitivity + 1)
        assert _le(s, score(up).score)


@settings(max_examples=300)
@given(inputs)
def test_deterministic_bounded_and_shares_sum_to_one(inp: RiskInput) -> None:
    a, b = score(inp), score(inp)
    assert a == b
    assert 0.0 < a.score <= 100.0
    assert math.isclose(a.score, 100 * math.prod(f.effect for f in a.factors), rel_tol=1e-9)
    total = sum(f.share for f in a.factors)
    assert math.isclose(total, 1.0, rel_tol=1e-9) or (total == 0.0 and a.score == 100.0)
    assert all(0.0 <= f.share <= 1.0 for f in a.factors)
