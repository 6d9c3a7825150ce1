"""Every reader over the full real data sets in ../shared/data, against the counts its
README states (shared/data/README.md, "Summary" and "Details per data set")."""

from __future__ import annotations

import collections
import re
from pathlib import Path

import pytest

from patchwarden.errors import Problem
from patchwarden.intel import detect
from patchwarden.intel.interface import FeedInfo, FeedRecord
from patchwarden.model import Advisory, EpssScore, KevEntry

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

pytestmark = pytest.mark.slow


def read_all(path: Path) -> list[FeedRecord]:
    if not path.exists():
        pytest.fail(f"the shared data set {path} is missing")
    return list(detect(path).read(path))


def kinds(records: list[FeedRecord]) -> dict[str, int]:
    return dict(collections.Counter(type(r).__name__ for r in records))


def test_all_pypa_yaml() -> None:
    records = read_all(SHARED / "osv" / "pypi" / "vulns")
    assert kinds(records) == {"Advisory": 2661}
    advisories = [r for r in records if isinstance(r, Advisory)]
    assert len({a.affected[0].name.lower() for a in advisories}) == 664
    # The README's 2,081 counts every CVE id the files mention; 2,055 of them are aliases.
    assert len({x for a in advisories for x in a.aliases if x.startswith("CVE-")}) == 2055
    text = (" ".join((*a.aliases, *a.related, *a.references, a.details)) for a in advisories)
    assert len({m for t in text for m in re.findall(r"CVE-\d{4}-\d+", t)}) == 2081
    newest = max(a.modified for a in advisories)
    assert newest.isoformat() == "2024-10-10T17:22:00.587279+00:00"  # README: 17:22:00Z


def test_debian_lists() -> None:
    dsa = read_all(SHARED / "debian" / "security-tracker" / "DSA" / "list")
    dla = read_all(SHARED / "debian" / "security-tracker" / "DLA" / "list")
    # 5,406 DSA entries: one of them (DSA-423) has a version that is not a version.
    assert kinds(dsa) == {"Advisory": 5405, "Problem": 1}
    assert kinds(dla) == {"Advisory": 3534}
    (problem,) = [r for r in dsa if isinstance(r, Problem)]
    assert problem.record == "DSA-423"
    newest = next(r for r in dsa if isinstance(r, Advisory))
    assert newest.id == "DSA-5380-1"
    assert next(r for r in dla if isinstance(r, Advisory)).id == "DLA-3380-1"
    bullseye = sum(
        1 for r in dsa if isinstance(r, Advisory) for a in r.affected if a.ecosystem == "Debian:11"
    )
    buster_dla = sum(
        1 for r in dla if isinstance(r, Advisory) for a in r.affected if a.ecosystem == "Debian:10"
    )
    assert (bullseye, buster_dla) == (410, 322)


@pytest.mark.parametrize(
    ("release", "repo", "packages"),
    [
        ("v3.19", "main", 257),
        ("v3.19", "community", 383),
        ("v3.20", "main", 255),
        ("v3.20", "community", 408),
        ("v3.21", "main", 256),
        ("v3.21", "community", 414),
    ],
)
def test_alpine_secdb(release: str, repo: str, packages: int) -> None:
    records = read_all(SHARED / "alpine" / "secdb" / release / f"{repo}.json")
    assert isinstance(records[0], FeedInfo)
    assert records[0].version == f"{release}/{repo}"
    names = {a.name for r in records if isinstance(r, Advisory) for a in r.affected}
    assert len(names) == packages


def test_alpine_ids_unique_across_all_files() -> None:
    ids: list[str] = []
    problems = 0
    for path in sorted((SHARED / "alpine" / "secdb").glob("*/*.json")):
        for record in read_all(path):
            if isinstance(record, Advisory):
                ids.append(record.id)
            problems += isinstance(record, Problem)
    assert len(ids) == len(set(ids)) == 24261
    assert problems == 2  # tailscale's 'CVE-????-?????' placeholder in v3.20 and v3.21


@pytest.mark.parametrize(
    ("name", "version", "count"),
    [
        ("known_exploited_vulnerabilities.json", "2025.08.25", 1404),
        ("known_exploited_vulnerabilities-2026.01.29.json", "2026.01.29", 1501),
    ],
)
def test_kev(name: str, version: str, count: int) -> None:
    records = read_all(SHARED / "kev" / name)
    info = records[0]
    assert isinstance(info, FeedInfo)
    assert info.version == version
    assert kinds(records[1:]) == {"KevEntry": count}


def test_epss_full_file() -> None:
    records = read_all(SHARED / "epss" / "epss_scores-2026-01-30.csv.gz")
    assert kinds(records) == {"FeedInfo": 1, "EpssScore": 313089}
    first, last = records[1], records[-1]
    assert isinstance(first, EpssScore)
    assert first.cve_id == "CVE-1999-0001"
    assert isinstance(last, EpssScore)
    assert last.cve_id == "CVE-2026-25211"
    kev = {
        r.cve_id
        for r in read_all(SHARED / "kev" / "known_exploited_vulnerabilities-2026.01.29.json")
        if isinstance(r, KevEntry)
    }
    scored = {r.cve_id for r in records if isinstance(r, EpssScore)}
    assert kev <= scored  # "All 1,501 CVEs of the 2026-01-29 KEV have a score."
