"""pep440 scheme: ``packaging.version`` is the reference; real versions from PyPA advisories."""

from __future__ import annotations

import gzip
import random
import re
from pathlib import Path

import pytest
from packaging.version import InvalidVersion as PackagingInvalid
from packaging.version import Version

from patchwarden.errors import InvalidVersion
from patchwarden.versions.pep440 import Pep440Scheme, parse_pep440

DATA = Path(__file__).resolve().parents[1] / "data" / "versions"
SCHEME = Pep440Scheme()
with gzip.open(DATA / "pypi-osv-versions.txt.gz", "rt", encoding="utf-8") as _fh:
    REAL = _fh.read().split()


def _packaging_valid(v: str) -> bool:
    try:
        Version(v)
    except PackagingInvalid:
        return False
    return True


def test_validity_matches_packaging_on_real_versions() -> None:
    assert len(REAL) > 10_000
    assert [v for v in REAL if SCHEME.is_valid(v) != _packaging_valid(v)] == []


def test_order_matches_packaging_on_real_pairs() -> None:
    valid = [v for v in REAL if _packaging_valid(v)]
    rng = random.Random(11)
    pairs = [(rng.choice(valid), rng.choice(valid)) for _ in range(20_000)]
    wrong = []
    for a, b in pairs:
        va, vb = Version(a), Version(b)
        want = -1 if va < vb else (1 if va > vb else 0)
        if SCHEME.compare(a, b) != want:
            wrong.append((a, b))
    assert wrong == []


@pytest.mark.parametrize(
    "version", ["1.0-foo", "1.0.0.0.0a1b2", "latest", "1.2.3 4", "v", "1.0+", "==1.0"]
)
def test_invalid_pep440_raises_invalid_version(version: str) -> None:
    with pytest.raises(InvalidVersion, match=re.escape(f"invalid pep440 version {version!r}")):
        parse_pep440(version)


def test_normalised_forms_are_equal_but_keep_raw() -> None:
    a, b = parse_pep440("1.0RC1"), parse_pep440("1.0.0rc1")
    assert a == b
    assert hash(a) == hash(b)
    assert a.raw == "1.0RC1"
    assert str(a.version) == "1.0rc1"
