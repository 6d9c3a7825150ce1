"""semver scheme: golden table from node's ``semver`` package and a live re-check."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

from patchwarden.errors import InvalidVersion
from patchwarden.versions.semver import SemverScheme, parse_semver

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root: tests.reference
from tests.reference import reftools

GOLDEN = reftools.load_golden("semver")
SCHEME = SemverScheme()
with gzip.open(reftools.GOLDEN_DIR / "semver-rejected.jsonl.gz", "rt", encoding="utf-8") as _fh:
    REJECTED = [tuple(json.loads(line)[:2]) for line in _fh]

# SemVer 2.0.0 §11: "1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta <
# 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0".
SPEC_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
]


def test_spec_example_order() -> None:
    assert sorted(SPEC_ORDER, key=SCHEME.parse) == SPEC_ORDER


def test_agrees_with_golden_table() -> None:
    assert len(GOLDEN) >= 1_500
    wrong = [(a, b, c) for a, b, c in GOLDEN if SCHEME.compare(a, b) != c]
    assert wrong == []


def test_strings_node_rejects_are_rejected() -> None:
    """Pairs where node's strict ``semver.valid`` rejected a side: we reject that side too."""
    assert REJECTED
    for a, b in REJECTED:
        assert not (SCHEME.is_valid(a) and SCHEME.is_valid(b)), (a, b)


@pytest.mark.reference
def test_live_node_semver_agrees() -> None:
    assert reftools.have_node_semver(), "node semver missing (make system-deps runs npm ci)"
    pairs = [(a, b) for a, b, _ in GOLDEN]
    assert reftools.node_semver_compare(pairs) == [c for _, _, c in GOLDEN]
    edge = ["v1.2.3", " 1.2.3 ", "1.2.3+b.1", "1.2.3-0", "1.2.3-a-b", "1.2.3--", "1.2.3-1a"]
    edge_pairs = [(a, b) for a in edge for b in edge]
    assert [SCHEME.compare(a, b) for a, b in edge_pairs] == reftools.node_semver_compare(edge_pairs)


@pytest.mark.parametrize(
    "version", ["1.2", "01.2.3", "1.2.3-01", "=1.2.3", "V1.2.3", "1.2.3beta", "1.2.3-", "1.2.3+"]
)
def test_loose_forms_are_rejected(version: str) -> None:
    with pytest.raises(InvalidVersion, match="invalid semver version"):
        parse_semver(version)


def test_build_metadata_is_ignored() -> None:
    assert parse_semver("1.0.0+a") == parse_semver("1.0.0+b")
    assert hash(parse_semver("1.0.0+a")) == hash(parse_semver("v1.0.0"))
