"""Order properties of every scheme, on generated strings and on real ones.

A scheme must give a total order that is consistent with ``==`` and ``hash``: reflexive,
antisymmetric, transitive, exactly one of ``<``, ``==``, ``>``; parsing is deterministic.
"""

from __future__ import annotations

import gzip
import itertools
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchwarden.versions import SCHEMES

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: tests.reference
from tests.reference import reftools

DATA = Path(__file__).resolve().parents[1] / "data" / "versions"


def _digits(max_size: int = 3) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=1, max_size=max_size)


def _num() -> st.SearchStrategy[str]:
    return st.integers(0, 120).map(str)


_apk = st.builds(
    lambda first, dots, letter, suffixes, rev: (
        first + "".join("." + d for d in dots) + letter + "".join(suffixes) + rev
    ),
    _digits(),
    st.lists(_digits(), max_size=3),
    st.sampled_from(["", "", "a", "b", "z"]),
    st.lists(
        st.builds(
            lambda s, n: f"_{s}{n}",
            st.sampled_from(["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"]),
            st.sampled_from(["", "1", "2", "10"]),
        ),
        max_size=2,
    ),
    st.sampled_from(["", "-r0", "-r1", "-r10"]),
)
_prerelease = st.lists(
    st.one_of(_num(), st.sampled_from(["alpha", "beta", "rc", "x-y", "0a", "a1", "-"])),
    min_size=1,
    max_size=3,
).map(".".join)
_semver = st.builds(
    lambda a, b, c, pre, build: f"{a}.{b}.{c}" + (f"-{pre}" if pre else "") + build,
    _num(),
    _num(),
    _num(),
    st.one_of(st.none(), _prerelease),
    st.sampled_from(["", "+build.1", "+incompatible"]),
)
_go = st.one_of(
    _semver.map(lambda v: "v" + v),
    st.builds(lambda a, b: f"v{a}" + (f".{b}" if b else ""), _num(), st.one_of(st.none(), _num())),
)
_pep440 = st.builds(
    lambda epoch, rel, pre, post, dev, local: epoch + rel + pre + post + dev + local,
    st.sampled_from(["", "", "1!"]),
    st.lists(_num(), min_size=1, max_size=4).map(".".join),
    st.sampled_from(["", "a1", "b2", "rc1", "rc10"]),
    st.sampled_from(["", ".post1", ".post2"]),
    st.sampled_from(["", ".dev0", ".dev3"]),
    st.sampled_from(["", "+local.1", "+ubuntu"]),
)

GENERATED: dict[str, st.SearchStrategy[str]] = {
    "dpkg": st.from_regex(
        r"\A([0-9]{1,2}:)?[0-9][A-Za-z0-9.+~]{0,8}(-[A-Za-z0-9.+~]{1,5})?\Z", fullmatch=True
    ),
    "rpm": st.from_regex(
        r"\A([0-9]{1,2}:)?[A-Za-z0-9._+~^]{0,8}[A-Za-z0-9~^](-[A-Za-z0-9._+~^]{1,5})?\Z",
        fullmatch=True,
    ),
    "apk": _apk,
    "pep440": _pep440,
    "semver": _semver,
    "go": _go,
    # Maven's own order is not transitive on degenerate strings (0 < A < 0A0 < 0 in
    # ComparableVersion itself, see test_versions_maven.py), so generated Maven versions
    # start like real ones do: with a non-zero number.
    "maven": st.builds(
        lambda head, tail: head + tail,
        st.integers(1, 30).map(str),
        st.text("0123456789.-abmrcspxGAFinal", max_size=12),
    ),
}


def _check_triple(name: str, x: str, y: str, z: str) -> None:
    scheme = SCHEMES[name]
    a, b, c = scheme.parse(x), scheme.parse(y), scheme.parse(z)
    assert a == scheme.parse(x)
    assert hash(a) == hash(scheme.parse(x))
    for p, q in itertools.permutations((a, b, c), 2):
        assert [p < q, p == q, p > q].count(True) == 1, (p, q)
        assert (p <= q) == (p < q or p == q)
        assert (p >= q) == (p > q or p == q)
        if p == q:
            assert hash(p) == hash(q), (p, q)
        if p <= q <= p:
            assert p == q
    for p, q, r in itertools.permutations((a, b, c)):
        if p <= q <= r:
            assert p <= r, (p, q, r)


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_total_order_on_generated_strings(name: str) -> None:
    @settings(max_examples=300, deadline=None)
    @given(GENERATED[name], GENERATED[name], GENERATED[name])
    def check(x: str, y: str, z: str) -> None:
        _check_triple(name, x, y, z)

    check()


def _real(name: str) -> list[str]:
    if name == "apk":
        text = (DATA / "apk-secdb-versions.txt").read_text(encoding="utf-8")
        return text.split()
    if name == "pep440":
        with gzip.open(DATA / "pypi-osv-versions.txt.gz", "rt", encoding="utf-8") as fh:
            return fh.read().split()
    if name == "go":
        return ["v" + a for a, _, _ in reftools.load_golden("semver")]
    return [v for a, b, _ in reftools.load_golden(name) for v in (a, b)]


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_total_order_on_real_strings(name: str) -> None:
    """Sort 400 real versions, then check every pair against the sorted order."""
    scheme = SCHEMES[name]
    valid = [v for v in reftools.unique(_real(name)) if scheme.is_valid(v)]
    assert len(valid) >= 100
    sample = random.Random(5).sample(valid, min(400, len(valid)))
    parsed = sorted(scheme.parse(v) for v in sample)
    for i, j in itertools.combinations(range(len(parsed)), 2):
        lo, hi = parsed[i], parsed[j]
        assert lo <= hi, (lo, hi)
        assert not hi < lo, (lo, hi)
        if lo == hi:
            assert hash(lo) == hash(hi), (lo, hi)
    spread = parsed[:: max(1, len(parsed) // 40)]  # 40 versions across the whole range
    for a, b in itertools.combinations(spread[:20], 2):
        for c in spread[20:]:
            _check_triple(name, a.raw, b.raw, c.raw)  # type: ignore[attr-defined]
