"""apk scheme: apk-tools' own test vectors and an independent port of its compare loop.

There is no apk binary on Debian. ``tests/data/versions/apk-version.data`` is apk-tools'
``test/version.data`` (see the README there); the second oracle below re-implements
apk-tools' ``apk_version_compare_blob`` loop (token by token, as ``src/version.c`` does it)
and is checked against our key-based order on pairs of real Alpine secdb versions.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from patchwarden.errors import InvalidVersion
from patchwarden.versions import apk
from patchwarden.versions.apk import ApkScheme, parse_apk

DATA = Path(__file__).resolve().parents[1] / "data" / "versions"
SCHEME = ApkScheme()
SECDB = (DATA / "apk-secdb-versions.txt").read_text(encoding="utf-8").split()
_OPS = {"<": -1, "=": 0, ">": 1}


def _vectors() -> list[tuple[str, str, int]]:
    rows = []
    for line in (DATA / "apk-version.data").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            a, op, b = line.split()
            rows.append((a, b, _OPS[op]))
    return rows


VECTORS = _vectors()
# apk-tools 3 string-sorts invalid versions; we reject them instead (see apk.py).
INVALID_IN_VECTORS = {"23_foo", "1.0bc"}


def test_apk_tools_vectors() -> None:
    assert len(VECTORS) > 700
    checked = 0
    for a, b, expected in VECTORS:
        if {a, b} & INVALID_IN_VECTORS:
            continue
        assert SCHEME.compare(a, b) == expected, (a, b)
        assert SCHEME.compare(b, a) == -expected, (b, a)
        checked += 1
    assert checked == len(VECTORS) - 2


@pytest.mark.parametrize("version", sorted(INVALID_IN_VECTORS))
def test_vectors_marked_invalid_are_rejected(version: str) -> None:
    with pytest.raises(InvalidVersion, match=f"invalid apk version {version!r}"):
        parse_apk(version)


def _reference_compare(a: str, b: str) -> int:
    """apk-tools ``apk_version_compare_blob`` as a loop over the token streams."""
    ta, tb = apk.tokens(a), apk.tokens(b)
    i = 0
    while True:
        at = ta[i][0] if i < len(ta) else apk.END
        bt = tb[i][0] if i < len(tb) else apk.END
        if at != bt:
            # "the non-terminating version is greater unless it's a suffix indicating
            # pre-release" (version.c)
            if at == apk.SUFFIX and ta[i][1] < 0:
                return -1
            if bt == apk.SUFFIX and tb[i][1] < 0:
                return 1
            return -1 if at > bt else 1
        if at == apk.END:
            return 0
        av, bv = ta[i][1], tb[i][1]
        if av != bv:
            return -1 if av < bv else 1
        i += 1


def test_key_order_matches_token_loop_on_real_secdb_pairs() -> None:
    valid = [v for v in SECDB if SCHEME.is_valid(v)]
    rng = random.Random(7)
    pairs = [(rng.choice(valid), rng.choice(valid)) for _ in range(20_000)]
    by_prefix: dict[str, list[str]] = {}
    for v in valid:
        by_prefix.setdefault(v.split(".")[0], []).append(v)
    for group in by_prefix.values():
        pairs += [(x, y) for x in group[:40] for y in group[:40]]
    wrong = [(a, b) for a, b in pairs if SCHEME.compare(a, b) != _reference_compare(a, b)]
    assert wrong == []


def test_real_secdb_versions_parse_except_two_malformed() -> None:
    bad = [v for v in SECDB if not SCHEME.is_valid(v)]
    # Two secdb entries apk-tools itself cannot parse (a date with dashes, a "-0" release).
    assert sorted(bad) == ["10.0.11-0", "2021-03-27-r5"]
    assert len(SECDB) - len(bad) > 2400


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0-r0", "1.0", 1),  # -r0 is a revision like any other
        ("1.01", "1.1", -1),  # a leading zero after a dot: "-1" then 1
        ("1.00", "1.0", -1),
        # Real secdb pair (vim): ".0" is -1, ".0056" is -2 then 56, so 8.0.0 sorts *above*
        # 8.0.0056 in apk-tools' version.c; univers says the opposite.
        ("8.0.0-r0", "8.0.0056-r0", 1),
        ("1.0_rc1", "1.0_alpha2", 1),
        ("1.0_p1", "1.0-r5", 1),
        ("1.0_git20240101", "1.0_p1", -1),
        ("1.0a", "1.0.1", -1),
        ("1.2.3_pre1_p2", "1.2.3_pre1", 1),
    ],
)
def test_documented_corner_cases(a: str, b: str, expected: int) -> None:
    assert SCHEME.compare(a, b) == expected


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        ("r1.0", "does not start with a digit"),
        ("1.0-1", "unexpected '-'"),
        ("1.0_foo", "unknown suffix"),
        ("1.0a.1", "not allowed here"),
        ("1.123456789012345678", "too many digits"),
        ("1.0 ", "unexpected ' '"),
    ],
)
def test_invalid_versions_are_named(version: str, reason: str) -> None:
    with pytest.raises(InvalidVersion) as exc:
        parse_apk(version)
    assert f"invalid apk version {version!r}" in str(exc.value)
    assert reason in str(exc.value)
