"""maven scheme: golden table from Maven's ``ComparableVersion`` and live fuzzing against it."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from patchwarden.errors import InvalidVersion
from patchwarden.versions.maven import MavenScheme, parse_maven

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: tests.reference
from tests.reference import reftools

GOLDEN = reftools.load_golden("maven")
SCHEME = MavenScheme()
needs_java = pytest.mark.skipif(
    not reftools.have_maven(),
    reason=f"java or {reftools.MAVEN_JAR} missing (Debian package 'maven' provides the jar)",
)


def test_agrees_with_golden_table() -> None:
    assert len(GOLDEN) >= 4_000
    wrong = [(a, b, c) for a, b, c in GOLDEN if SCHEME.compare(a, b) != c]
    assert wrong == []


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0-alpha-1", "1.0-alpha1", 0),
        ("1.0-a1", "1.0-alpha-1", 0),
        ("1.0-cr1", "1.0-rc1", 0),
        ("1.0.0.RELEASE", "1", 0),
        ("1.0-SNAPSHOT", "1.0-rc1", 1),
        ("1.0-sp1", "1.0", 1),
        ("1.0-xyz", "1.0-sp1", 1),
        ("1.1", "1-1", 1),
        ("1.x", "1-x", 0),
        ("2.0.0.M1", "2.0.0-milestone-1", 0),
        ("31.1-jre", "31.1-android", 1),
        ("4.1.68.Final", "4.1.68", 0),
    ],
)
def test_known_maven_rules(a: str, b: str, expected: int) -> None:
    assert SCHEME.compare(a, b) == expected


@needs_java
@pytest.mark.reference
def test_live_comparable_version_agrees_on_table() -> None:
    pairs = [(a, b) for a, b, _ in GOLDEN]
    assert reftools.maven_compare(pairs) == [c for _, _, c in GOLDEN]


_PARTS = ["0", "1", "2", "10", "00", "a", "b", "m", "alpha", "rc", "cr", "sp", "ga", "final"]
_PARTS += ["snapshot", "SNAPSHOT", "RELEASE", "jre", "x", "Final", "2024", "999999999999"]


def _random_version(rng: random.Random) -> str:
    out = rng.choice(["1", "2", "1.0", "0", "x"])
    for _ in range(rng.randint(0, 4)):
        out += rng.choice([".", "-", "", ""]) + rng.choice(_PARTS)
    return out


@needs_java
@pytest.mark.reference
def test_live_comparable_version_agrees_on_random_shapes() -> None:
    """Fresh random dot/dash/qualifier mixtures each run, asked of the real class."""
    rng = random.Random()
    versions = [_random_version(rng) for _ in range(600)]
    pairs = [(rng.choice(versions), rng.choice(versions)) for _ in range(1500)]
    live = reftools.maven_compare(pairs)
    wrong = [(a, b, c) for (a, b), c in zip(pairs, live, strict=True) if SCHEME.compare(a, b) != c]
    assert wrong == []


def test_reproduces_comparable_versions_own_cycle() -> None:
    """ComparableVersion is not transitive on degenerate strings; we copy it, not fix it."""
    v = [parse_maven(x) for x in ("0", "A", "0A0")]
    assert v[0] < v[1] < v[2] < v[0]


@needs_java
@pytest.mark.reference
def test_live_cycle_is_maven_s_own() -> None:
    assert reftools.maven_compare([("0", "A"), ("A", "0A0"), ("0A0", "0")]) == [-1, -1, -1]


def test_equal_means_equal_hash() -> None:
    a, b = parse_maven("1.0.0-GA"), parse_maven("1")
    assert a == b
    assert hash(a) == hash(b)
    assert a.raw == "1.0.0-GA"


@pytest.mark.parametrize("version", ["", "   ", "1.0 beta"])
def test_invalid(version: str) -> None:
    with pytest.raises(InvalidVersion, match="invalid maven version"):
        parse_maven(version)
