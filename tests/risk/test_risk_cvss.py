"""CVSS parsing on real vectors (Ubuntu OVAL with Ubuntu's own scores; PyPA advisories)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from patchwarden.model import Severity, SeverityScore
from patchwarden.risk.cvss import AttackVector, from_severity, parse_cvss

CASES: dict[str, list[dict[str, Any]]] = json.loads(
    (Path(__file__).parents[1] / "data" / "risk" / "cvss_vectors.json").read_text()
)
_CIA = {"N": 0.0, "L": 0.22 / 0.56, "H": 1.0}


def _metrics(vector: str) -> dict[str, str]:
    return dict(part.split(":", 1) for part in vector.split("/")[1:])


@pytest.mark.parametrize("case", CASES["ubuntu"], ids=lambda c: str(c["id"]))
def test_ubuntu_scores_and_severity_agree(case: dict[str, Any]) -> None:
    info = parse_cvss("CVSS_V3", case["vector"])
    assert info is not None
    assert info.base_score == case["cvss_score"]
    assert info.severity == Severity(case["cvss_severity"])
    assert info.version == case["vector"].split("/")[0].removeprefix("CVSS:")


@pytest.mark.parametrize("case", CASES["ubuntu"] + CASES["pypa"], ids=lambda c: str(c["id"]))
def test_impacts_vector_and_automatable(case: dict[str, Any]) -> None:
    info = from_severity(SeverityScore(type=case.get("type", "CVSS_V3"), score=case["vector"]))
    assert info is not None
    m = _metrics(case["vector"])
    assert (info.confidentiality, info.integrity, info.availability) == (
        _CIA[m["C"]],
        _CIA[m["I"]],
        _CIA[m["A"]],
    )
    assert (
        info.attack_vector
        == {
            "N": AttackVector.NETWORK,
            "A": AttackVector.ADJACENT,
            "L": AttackVector.LOCAL,
            "P": AttackVector.PHYSICAL,
        }[m["AV"]]
    )
    expected = m["AV"] == "N" and m["AC"] == "L" and m["PR"] == "N" and m["UI"] == "N"
    assert info.automatable is expected
    assert info.vector == case["vector"]


def test_real_data_covers_both_automatable_answers() -> None:
    answers = {
        parse_cvss("CVSS_V3", c["vector"]).automatable  # type: ignore[union-attr]
        for c in CASES["pypa"]
    }
    assert answers == {True, False}


@pytest.mark.parametrize(
    ("kind", "vector"),
    [
        ("CVSS_V3", ""),
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H"),
        ("CVSS_V3", "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
        ("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P"),
        ("CVSS_V4", "CVSS:4.0/AV:N/AC:L"),
        ("CVSS_V4", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
        ("Ubuntu", "high"),
    ],
)
def test_malformed_gives_none(kind: str, vector: str) -> None:
    assert parse_cvss(kind, vector) is None


def test_v4_supplemental_automatable_wins() -> None:
    base = "CVSS:4.0/AV:L/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N"
    assert parse_cvss("CVSS_V4", base).automatable is False  # type: ignore[union-attr]
    assert parse_cvss("CVSS_V4", base + "/AU:Y").automatable is True  # type: ignore[union-attr]
    info = parse_cvss("CVSS_V4", base)
    assert info is not None
    assert (info.confidentiality, info.integrity, info.availability) == (
        0.22 / 0.56,
        0.0,
        0.0,
    )
