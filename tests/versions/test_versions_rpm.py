"""rpm scheme: rpm's own test cases, a golden table from ``rpm.vercmp``, a live re-check."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from patchwarden.errors import InvalidVersion
from patchwarden.versions.rpm import RpmScheme, parse_rpm

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: tests.reference
from tests.reference import reftools

GOLDEN = reftools.load_golden("rpm")
SCHEME = RpmScheme()

# rpm's tests/rpmvercmp.at (rpm-software-management/rpm), expected results as written there.
RPMVERCMP_AT = [
    ("1.0", "1.0", 0),
    ("1.0", "2.0", -1),
    ("2.0.1", "2.0", 1),
    ("2.0.1a", "2.0.1", 1),
    ("5.5p1", "5.5p2", -1),
    ("5.5p1", "5.5p10", -1),
    ("10xyz", "10.1xyz", -1),
    ("xyz10", "xyz10.1", -1),
    ("xyz.4", "8", -1),
    ("xyz.4", "2", -1),
    ("5.5p2", "5.6p1", -1),
    ("5.6p1", "6.5p1", -1),
    ("6.0.rc1", "6.0", 1),
    ("10b2", "10a1", 1),
    ("10a2", "10b2", -1),
    ("1.0a", "1.0aa", -1),
    ("10.0001", "10.1", 0),
    ("10.0001", "10.0039", -1),
    ("4.999.9", "5.0", -1),
    ("20101121", "20101122", -1),
    ("2.0", "2_0", 0),
    ("a+", "a_", 0),
    ("+a", "_a", 0),
    ("_+", "+_", 0),
    ("1.0~rc1", "1.0", -1),
    ("1.0~rc1", "1.0~rc2", -1),
    ("1.0~rc1~git123", "1.0~rc1", -1),
]


@pytest.mark.parametrize(("a", "b", "expected"), RPMVERCMP_AT)
def test_rpm_testsuite_cases(a: str, b: str, expected: int) -> None:
    assert SCHEME.compare(a, b) == expected
    assert SCHEME.compare(b, a) == -expected


def test_golden_table_covers_tilde_caret_epoch_release() -> None:
    assert len(GOLDEN) >= 5_000
    strings = {a for a, _, _ in GOLDEN}
    assert any("~" in s for s in strings)
    assert any("^" in s for s in strings)
    assert any(s[:1].isdigit() and ":" in s for s in strings)
    assert any(".el9" in s for s in strings)


def test_agrees_with_golden_table() -> None:
    wrong = [(a, b, c) for a, b, c in GOLDEN if SCHEME.compare(a, b) != c]
    assert wrong == []


@pytest.mark.reference
def test_live_rpm_agrees_on_whole_table() -> None:
    """One ``rpm --eval`` call re-computes every table row with rpm's own ``rpm.vercmp``."""
    assert reftools.have_rpm(), "rpm is missing (make system-deps installs it)"
    pairs = [(a, b) for a, b, _ in GOLDEN]
    assert reftools.rpm_compare(pairs) == [c for _, _, c in GOLDEN]


@pytest.mark.reference
def test_live_rpm_on_edge_cases() -> None:
    cases = [
        "1.0",
        "1.0-0",
        "1.0-~",
        "1.0-1",
        "1.0^",
        "1.0^1",
        "1.0~",
        "1.0~^",
        "1.0^~",
        "0:1.0",
        ":1.0",
        "1:1.0",
        "a:1",
        "1.0a",
        "1.0.a",
        "1.0-1.el9",
        "1.0-1.el9_2",
        "1.0-1.el9~bootstrap",
        "1.0-1^post",
        "01.1",
        "1b.fc17",
        "1.fc17",
    ]
    pairs = [(a, b) for a in cases for b in cases]
    assert [SCHEME.compare(a, b) for a, b in pairs] == reftools.rpm_compare(pairs)


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        ("1.0-", "release after '-' is empty"),
        ("1:-1", "empty version part"),
        ("1.0 -1", "embedded spaces"),
        ("1.0\u00e9", "non-ASCII"),
        ("  ", "empty version"),
    ],
)
def test_invalid_versions_are_named(version: str, reason: str) -> None:
    with pytest.raises(InvalidVersion) as exc:
        parse_rpm(version)
    assert f"invalid rpm version {version!r}" in str(exc.value)
    assert reason in str(exc.value)
