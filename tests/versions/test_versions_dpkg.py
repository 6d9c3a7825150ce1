"""dpkg scheme: golden table from ``dpkg --compare-versions`` plus a live re-check."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from patchwarden.errors import InvalidVersion
from patchwarden.versions.dpkg import DpkgScheme, parse_dpkg

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: tests.reference
from tests.reference import reftools

GOLDEN = reftools.load_golden("dpkg")
SCHEME = DpkgScheme()


def test_golden_table_is_large_and_real() -> None:
    assert len(GOLDEN) >= 10_000
    assert {c for _, _, c in GOLDEN} == {-1, 0, 1}
    assert any("~" in a for a, _, _ in GOLDEN)
    assert any(":" in a for a, _, _ in GOLDEN)


def test_agrees_with_golden_table() -> None:
    wrong = [(a, b, c) for a, b, c in GOLDEN if SCHEME.compare(a, b) != c]
    assert wrong == []


@pytest.mark.reference
def test_live_dpkg_agrees_on_random_pairs() -> None:
    """The table stays honest: 300 random table pairs and their mirror, asked of dpkg now."""
    assert reftools.have_dpkg(), "dpkg is missing"
    rng = random.Random()
    sample = rng.sample(GOLDEN, 300)
    pairs = [(a, b) for a, b, _ in sample]
    live = reftools.dpkg_compare(pairs)
    assert live == [c for _, _, c in sample]
    assert [SCHEME.compare(a, b) for a, b in pairs] == live


@pytest.mark.reference
def test_live_dpkg_on_edge_cases() -> None:
    cases = [
        "1.0~rc1",
        "1.0~~",
        "1.0~",
        "1.0",
        "1.0-0",
        "1.0+b1",
        "1.0a",
        "1.0.0",
        "1.00",
        "1:0.1",
        "0:1.0",
        "1.0-1~bpo1",
        "1.0-1",
        "1.0-1+deb12u1",
        "1.0-1.1",
        "2:1.0",
        "10:0",
        "1.0-a",
        "1.0-~",
        "0",
        "00",
        "0~",
        "1a+",
        "1a.",
    ]
    pairs = [(a, b) for a in cases for b in cases]
    live = reftools.dpkg_compare(pairs)
    assert [SCHEME.compare(a, b) for a, b in pairs] == live


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        ("1:", "nothing after the epoch colon"),
        (":1.0", "epoch in version is empty"),
        ("a:1.0", "epoch 'a' is not a number"),
        ("99999999999:1.0", "is too big"),
        ("1.0-", "revision number is empty"),
        ("-1", "empty upstream version"),
        ("1.0 1", "embedded spaces"),
        ("abc", "does not start with a digit"),
        ("1.0_1", "invalid character in upstream version"),
        ("1.0-1_2", "invalid character in revision"),
        ("1.0:1-1", "epoch '1.0' is not a number"),
        ("", "empty version"),
    ],
)
def test_invalid_versions_are_named(version: str, reason: str) -> None:
    with pytest.raises(InvalidVersion) as exc:
        parse_dpkg(version)
    assert f"invalid dpkg version {version!r}" in str(exc.value)
    assert reason in str(exc.value)


def test_not_a_string_is_an_error() -> None:
    with pytest.raises(InvalidVersion, match="expected a string, got float"):
        SCHEME.parse(1.0)  # type: ignore[arg-type]


def test_raw_is_kept_and_equal_versions_hash_alike() -> None:
    a, b = parse_dpkg("1.0"), parse_dpkg("0:1.00-0")
    assert a == b
    assert hash(a) == hash(b)
    assert (a.raw, b.raw) == ("1.0", "0:1.00-0")
    assert str(b) == "0:1.00-0"
    assert repr(a) == "DpkgVersion('1.0')"
