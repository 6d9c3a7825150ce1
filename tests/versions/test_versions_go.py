"""go scheme: the cases of golang.org/x/mod/semver's ``semver_test.go``.

``TESTS`` is that file's ``tests`` table (input, canonical form; empty = invalid), in its
order, which is ascending: ``TestCompare`` requires ``Compare(tests[i], tests[j])`` to be
0 when the canonical forms are equal and otherwise the sign of ``i - j``.
"""

from __future__ import annotations

import pytest

from patchwarden.errors import InvalidVersion
from patchwarden.versions.golang import GoScheme, parse_go

SCHEME = GoScheme()

TESTS = [
    ("bad", ""),
    ("v1-alpha.beta.gamma", ""),
    ("v1-pre", ""),
    ("v1+meta", ""),
    ("v1-pre+meta", ""),
    ("v1.2-pre", ""),
    ("v1.2+meta", ""),
    ("v1.2-pre+meta", ""),
    ("v1.0.0-alpha", "v1.0.0-alpha"),
    ("v1.0.0-alpha.1", "v1.0.0-alpha.1"),
    ("v1.0.0-alpha.beta", "v1.0.0-alpha.beta"),
    ("v1.0.0-beta", "v1.0.0-beta"),
    ("v1.0.0-beta.2", "v1.0.0-beta.2"),
    ("v1.0.0-beta.11", "v1.0.0-beta.11"),
    ("v1.0.0-rc.1", "v1.0.0-rc.1"),
    ("v1", "v1.0.0"),
    ("v1.0", "v1.0.0"),
    ("v1.0.0", "v1.0.0"),
    ("v1.2", "v1.2.0"),
    ("v1.2.0", "v1.2.0"),
    ("v1.2.3-456", "v1.2.3-456"),
    ("v1.2.3-456.789", "v1.2.3-456.789"),
    ("v1.2.3-456-789", "v1.2.3-456-789"),
    ("v1.2.3-456a", "v1.2.3-456a"),
    ("v1.2.3-pre", "v1.2.3-pre"),
    ("v1.2.3-pre+meta", "v1.2.3-pre"),
    ("v1.2.3-pre.1", "v1.2.3-pre.1"),
    ("v1.2.3-zzz", "v1.2.3-zzz"),
    ("v1.2.3", "v1.2.3"),
    ("v1.2.3+meta", "v1.2.3"),
    ("v1.2.3+meta-pre", "v1.2.3"),
    ("v1.2.3+meta-pre.sha.256a", "v1.2.3"),
]
VALID = [(i, v, canon) for i, (v, canon) in enumerate(TESTS) if canon]


@pytest.mark.parametrize(("version", "canonical"), TESTS)
def test_is_valid(version: str, canonical: str) -> None:
    assert SCHEME.is_valid(version) == bool(canonical)


def test_compare_table() -> None:
    for i, vi, ci in VALID:
        for j, vj, cj in VALID:
            want = 0 if ci == cj else (-1 if i < j else 1)
            assert SCHEME.compare(vi, vj) == want, (vi, vj)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("v1", "v1", 0),
        ("v2", "v1", 1),
        ("v1", "v2", -1),
        # Numeric, not string, comparison of MAJOR/MINOR/PATCH (SemVer §11; x/mod's
        # compareInt compares digit strings by length first).
        ("v1.19", "v1.2", 1),
    ],
)
def test_explicit_compares(a: str, b: str, expected: int) -> None:
    assert SCHEME.compare(a, b) == expected


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        # Pseudo-versions (go.dev/ref/mod#pseudo-versions) sort before the release they
        # precede and by commit time among themselves.
        ("v0.0.0-20191109021931-daa7c04131f5", "v0.0.0-20200101000000-000000000000"),
        ("v0.0.0-20191109021931-daa7c04131f5", "v0.0.1"),
        ("v1.2.3", "v1.2.4-0.20191109021931-daa7c04131f5"),
        ("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.4"),
        ("v1.2.4-pre.0.20191109021931-daa7c04131f5", "v1.2.4-pre.1"),
        ("v1.9.9", "v2.0.0+incompatible"),
        ("1.2.3", "v1.2.4"),  # OSV writes Go versions without the "v"
    ],
)
def test_pseudo_versions_and_incompatible(lower: str, higher: str) -> None:
    assert parse_go(lower) < parse_go(higher)


def test_incompatible_is_build_metadata() -> None:
    assert parse_go("v2.0.0+incompatible") == parse_go("v2.0.0")


@pytest.mark.parametrize("version", ["v01.2.3", "v1.02.3", "v1.2.3-01", "v1.2.3-", "", "vv1"])
def test_invalid(version: str) -> None:
    with pytest.raises(InvalidVersion, match="invalid go version"):
        parse_go(version)
