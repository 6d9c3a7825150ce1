"""Real-data oracle: PyPA advisories carry ECOSYSTEM ranges and the ``versions`` osv.dev
enumerated from them, so range evaluation can be checked against real enumerations.

For every advisory entry, and every version mentioned anywhere in the package's advisories:

* the full matcher (ranges + enumerated versions) reports every listed version -- strictly,
  no exceptions (a false negative is a breach);
* range evaluation alone (``versions`` stripped) reports every listed version, and reports
  no unlisted version, except where the record itself is inconsistent. Each exception kind is
  a predicate on the data (never on our output), counted and printed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.version import InvalidVersion as PackagingInvalid
from packaging.version import Version

from patchwarden.ecosystems import Ecosystem, normalize_name
from patchwarden.intel.osv import OsvReader
from patchwarden.match import AdvisoryIndex, SchemeLookup, match
from patchwarden.model import Advisory, EventKind, Match, PackageKey, RangeType

TESTS = Path(__file__).resolve().parents[1]
SUBSET = TESTS / "data" / "match" / "pypa" / "vulns"
FULL = TESTS.parent.parent / "shared" / "data" / "osv" / "pypi" / "vulns"
PYPI = Ecosystem.parse("PyPI")

# Range evaluation reports these unlisted versions; the records' pairs overlap and disagree
# with their own enumeration (intro 0/fixed 3.1.1, intro 3.2.0/fixed 3.2.2, intro 3.1.1/fixed
# 3.2.0: 3.2.0 is both a fix and an introduction, osv.dev listed neither 3.2.0 nor 3.2.1).
KNOWN_INCONSISTENT_UNLISTED = {
    ("PYSEC-2023-72", "3.2.0"),
    ("PYSEC-2023-72", "3.2.1"),
}


def _pep440(text: str) -> Version | None:
    try:
        return Version(text)
    except PackagingInvalid:
        return None


@dataclass
class OracleReport:
    """Figures of one oracle run."""

    advisories: int = 0
    entries: int = 0
    keys: int = 0
    checked: int = 0
    listed: int = 0
    full_missed: list[tuple[str, str, str]] = field(default_factory=list)
    exceptions: Counter[str] = field(default_factory=Counter)
    unexplained: list[tuple[str, str, str, str]] = field(default_factory=list)
    seconds_match: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.advisories} advisories, {self.entries} entries, {self.keys} keys, "
            f"{self.checked} (entry, version) pairs checked, {self.listed} listed; "
            f"full matcher missed {len(self.full_missed)}; range-only exceptions "
            f"{dict(sorted(self.exceptions.items()))}; unexplained {len(self.unexplained)}; "
            f"matching took {self.seconds_match:.2f}s"
        )


def _fn_exception(version: str, advisory: Advisory, fixed: Iterable[str], ranged: bool) -> str:
    """Why a listed version may be unaffected by the ranges (a predicate on the data)."""
    if not ranged:
        return "versions-only entry (no ECOSYSTEM range)"
    parsed = _pep440(version)
    if parsed is None:
        return "listed version is not PEP 440 (ranges cannot order it)"
    if parsed.is_prerelease:
        return "listed pre-release sorts outside the range (PEP 440)"
    for fix in fixed:
        fix_parsed = _pep440(fix)
        if fix_parsed is not None and parsed.base_version == fix_parsed.base_version:
            return "listed version is the record's own fixed version (or its post-release)"
    return ""


def _fp_exception(
    advisory: Advisory,
    name: str,
    version: str,
    listed_any: bool,
    first_listed: dict[tuple[str, str], dt.datetime],
) -> str:
    """Why a version in range may be absent from the enumeration (a predicate on the data)."""
    if not listed_any:
        return "entry enumerates no versions"
    parsed = _pep440(version)
    seen = first_listed.get((name, str(parsed) if parsed else version))
    if seen is None or seen > advisory.modified:
        return "version not known to the enumeration (no advisory listed it before)"
    if parsed is not None and parsed.is_prerelease:
        return "enumeration left out a pre-release inside the range"
    if (advisory.id, version) in KNOWN_INCONSISTENT_UNLISTED:
        return "overlapping pairs disagree with their own enumeration"
    return ""


def run_oracle(advisories: list[Advisory], schemes: SchemeLookup) -> OracleReport:
    report = OracleReport()
    live = [a for a in advisories if a.withdrawn is None]
    report.advisories = len(live)
    universe: dict[str, set[str]] = defaultdict(set)
    first_listed: dict[tuple[str, str], dt.datetime] = {}
    for advisory in live:
        for entry in advisory.affected:
            name = normalize_name(PYPI, entry.name)
            universe[name].update(entry.versions)
            for version in entry.versions:
                parsed = _pep440(version)
                k = (name, str(parsed) if parsed else version)
                if k not in first_listed or advisory.modified < first_listed[k]:
                    first_listed[k] = advisory.modified
            for rng in entry.ranges:
                if rng.type is RangeType.ECOSYSTEM:
                    universe[name].update(e.version for e in rng.events if e.version != "0")
    keys = [
        PackageKey(ecosystem="PyPI", name=n, version=v) for n, vs in universe.items() for v in vs
    ]
    report.keys = len(keys)

    stripped = [
        dataclasses.replace(
            a, affected=tuple(dataclasses.replace(e, versions=()) for e in a.affected)
        )
        for a in live
    ]
    start = time.perf_counter()
    full = match(keys, AdvisoryIndex.build(live, schemes=schemes))
    ranges_only = match(keys, AdvisoryIndex.build(stripped, schemes=schemes))
    report.seconds_match = time.perf_counter() - start

    def hits(result_matches: dict[PackageKey, tuple[Match, ...]]) -> set[tuple[str, str, str]]:
        out: set[tuple[str, str, str]] = set()
        for key, found in result_matches.items():
            for m in found:
                out.add((m.advisory_id, key.name, key.version))
        return out

    full_hits = hits(full.matches)
    range_hits = hits(ranges_only.matches)
    scheme = schemes(PYPI)

    def canon(text: str) -> object:
        try:
            return scheme.parse(text)
        except ValueError:
            return text

    for advisory in live:
        for entry in advisory.affected:
            report.entries += 1
            name = normalize_name(PYPI, entry.name)
            listed = {canon(v) for v in entry.versions}
            ranged = any(r.type is RangeType.ECOSYSTEM for r in entry.ranges)
            fixed = [
                e.version
                for r in entry.ranges
                if r.type is RangeType.ECOSYSTEM
                for e in r.events
                if e.kind is EventKind.FIXED
            ]
            for version in sorted(universe[name]):
                report.checked += 1
                is_listed = canon(version) in listed
                triple = (advisory.id, name, version)
                if is_listed:
                    report.listed += 1
                    if triple not in full_hits:
                        report.full_missed.append(triple)
                in_range = triple in range_hits
                if is_listed and not in_range:
                    why = _fn_exception(version, advisory, fixed, ranged)
                    if why:
                        report.exceptions["listed, not in range: " + why] += 1
                    else:
                        report.unexplained.append((*triple, "listed but not in range"))
                elif in_range and not is_listed:
                    why = _fp_exception(advisory, name, version, bool(entry.versions), first_listed)
                    if why:
                        report.exceptions["in range, not listed: " + why] += 1
                    else:
                        report.unexplained.append((*triple, "in range but not listed"))
    return report


def _load(root: Path) -> list[Advisory]:
    records = list(OsvReader().read(root))
    advisories = [r for r in records if isinstance(r, Advisory)]
    assert len(advisories) == len(records), [r for r in records if not isinstance(r, Advisory)]
    return advisories


def test_pypa_subset_oracle(schemes: SchemeLookup) -> None:
    advisories = _load(SUBSET)
    assert len(advisories) == 47
    report = run_oracle(advisories, schemes)
    print(report.summary())
    assert report.full_missed == []
    assert report.unexplained == []
    assert report.listed > 1000
    # Each exception kind occurs in the subset on purpose (its README says which record).
    assert set(report.exceptions) == {
        "listed, not in range: listed version is not PEP 440 (ranges cannot order it)",
        "listed, not in range: listed pre-release sorts outside the range (PEP 440)",
        "listed, not in range: listed version is the record's own fixed version "
        "(or its post-release)",
        "listed, not in range: versions-only entry (no ECOSYSTEM range)",
        "in range, not listed: entry enumerates no versions",
        "in range, not listed: version not known to the enumeration (no advisory listed it before)",
        "in range, not listed: overlapping pairs disagree with their own enumeration",
    }


@pytest.mark.slow
@pytest.mark.skipif(not FULL.is_dir(), reason="the shared PyPA data set is not present")
def test_pypa_full_oracle(schemes: SchemeLookup) -> None:
    advisories = _load(FULL)
    assert len(advisories) == 2661
    report = run_oracle(advisories, schemes)
    print(report.summary())
    assert report.full_missed == []
    assert report.unexplained == []
    assert report.listed > 100_000
    exceptions = sum(report.exceptions.values())
    # Inconsistent records are a small minority of what was checked.
    assert exceptions < report.checked // 20
