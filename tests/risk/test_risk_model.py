"""Case table for the score: realistic findings, expected score, decision and factors."""

from __future__ import annotations

import datetime as dt

import pytest

from patchwarden.model import Environment, Severity
from patchwarden.risk.cvss import parse_cvss
from patchwarden.risk.model import CiaAggregate, RiskInput, RiskWeights, rank_key, score
from patchwarden.risk.ssvc import Decision

LOG4SHELL = parse_cvss("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H")
LOCAL = parse_cvss("CVSS_V3", "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:N/A:L")

CASES = [
    # description, input, expected score, expected decision
    (
        "kev + ransomware + internet-exposed crown jewel: capped at certainty",
        RiskInput(
            vulnerability="CVE-2021-44228",
            cvss=LOG4SHELL,
            kev=True,
            kev_ransomware=True,
            epss=0.944,
            epss_percentile=0.9999,
            internet_exposed=True,
            criticality=5,
            data_sensitivity=5,
        ),
        100.0,
        Decision.IMMEDIATE,
    ),
    (
        "low epss, local vector, dev box: tiny",
        RiskInput(
            vulnerability="CVE-2023-6270",
            cvss=LOCAL,
            epss=0.0004,
            epss_percentile=0.1,
            environment=Environment.DEV,
            criticality=2,
            data_sensitivity=2,
        ),
        100 * 0.0004 * 1.0 * 0.4 * 0.7 * 0.25,
        Decision.DEFER,
    ),
    (
        "no epss, no vector: severity prior and severity impact, waf discount",
        RiskInput(vulnerability="GHSA-x", severity=Severity.HIGH, tags=("waf", "pci")),
        100 * 0.02 * 0.7 * 0.8 * 0.6 * 0.8,
        Decision.SCHEDULED,
    ),
]


@pytest.mark.parametrize(("description", "inp", "expected", "decision"), CASES)
def test_cases(description: str, inp: RiskInput, expected: float, decision: Decision) -> None:
    result = score(inp)
    assert result.score == pytest.approx(expected, rel=1e-9), description
    assert result.ssvc is decision, description


def test_factor_sources_and_values() -> None:
    result = score(
        RiskInput(
            vulnerability="CVE-2021-44228",
            cvss=LOG4SHELL,
            cvss_source="GHSA-jfh8-c2jp-5v3q",
            kev=True,
            kev_date_added=dt.date(2021, 12, 10),
            kev_due_date=dt.date(2021, 12, 24),
            epss=0.5,
            epss_date=dt.date(2026, 1, 30),
            tags=("isolated",),
        )
    )
    by_name = {f.name: f for f in result.factors}
    assert by_name["epss"].source == "FIRST EPSS 2026-01-30"
    assert by_name["epss"].value == 0.5
    assert by_name["kev"].source == "CISA KEV (added 2021-12-10, due 2021-12-24)"
    assert by_name["kev"].effect == pytest.approx(0.95 / 0.5)
    assert by_name["cvss_impact"].source == "CVSS:3.1 vector from GHSA-jfh8-c2jp-5v3q"
    assert by_name["control:isolated"].effect == 0.5
    assert by_name["fix_available"].share == 0.0
    assert result.ssvc_inputs.exposure == "small"
    # EPSS 0.5 and the isolation discount each move the score by ln 2; KEV by ln 1.9.
    assert by_name["epss"].share == pytest.approx(by_name["control:isolated"].share)
    assert by_name["control:isolated"].share > by_name["kev"].share > 0


def test_mean_aggregate_and_weights_change_the_score() -> None:
    inp = RiskInput(vulnerability="CVE-1", cvss=LOCAL, epss=0.1)
    mean = score(inp, RiskWeights(cia_aggregate=CiaAggregate.MEAN))
    assert mean.impact < score(inp).impact


def test_rank_key_orders_score_then_decision_then_id() -> None:
    same = [
        score(RiskInput(vulnerability=v, epss=0.2, kev=k, asset=a))
        for v, k, a in [("CVE-2", False, "b"), ("CVE-1", False, "b"), ("CVE-1", False, "a")]
    ]
    ordered = sorted(same, key=rank_key)
    assert [(r.vulnerability, r.asset) for r in ordered] == [
        ("CVE-1", "a"),
        ("CVE-1", "b"),
        ("CVE-2", "b"),
    ]
