"""KEV and EPSS readers on real subsets, plus broken rows and a truncated gzip."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest

from patchwarden.errors import FeedFormatError, Problem
from patchwarden.intel.epss import EpssReader
from patchwarden.intel.interface import FeedInfo
from patchwarden.intel.kev import KevReader
from patchwarden.model import EpssScore, KevEntry

DATA = Path(__file__).resolve().parents[1] / "data" / "intel"
KEV = DATA / "kev" / "kev-2026.01.29-subset.json"
EPSS = DATA / "epss" / "epss-2026-01-30-first2000.csv.gz"


def test_kev_subset() -> None:
    records = list(KevReader().read(KEV))
    info = records[0]
    assert info == FeedInfo(
        feed="kev",
        version="2026.01.29",
        date=dt.datetime(2026, 1, 29, 20, 24, 37, 95900, tzinfo=dt.UTC),
        path=str(KEV),
    )
    entries = {r.cve_id: r for r in records[1:] if isinstance(r, KevEntry)}
    assert len(entries) == len(records) - 1 == 26
    log4shell = entries["CVE-2021-44228"]
    assert log4shell.vendor == "Apache"
    assert log4shell.product == "Log4j2"
    assert log4shell.date_added == dt.date(2021, 12, 10)
    assert log4shell.due_date == dt.date(2021, 12, 24)
    assert log4shell.known_ransomware is True
    raw = json.loads(KEV.read_text())["vulnerabilities"]
    assert sum(e.known_ransomware for e in entries.values()) == sum(
        v["knownRansomwareCampaignUse"] == "Known" for v in raw
    )


def test_kev_bad_records_are_problems(tmp_path: Path) -> None:
    data = json.loads(KEV.read_text())
    data["vulnerabilities"][0]["dateAdded"] = "2026/01/29"
    data["vulnerabilities"][1]["cveID"] = "CVE-26-1"
    data["vulnerabilities"][2] = "junk"
    path = tmp_path / "kev.json"
    path.write_text(json.dumps(data))
    records = list(KevReader().read(path))
    problems = [r for r in records if isinstance(r, Problem)]
    assert sum(isinstance(r, KevEntry) for r in records) == 26 - 3
    assert [(p.source, p.record, p.field) for p in problems] == [
        (str(path), data["vulnerabilities"][0]["cveID"], "vulnerabilities[0].dateAdded"),
        (str(path), "CVE-26-1", "vulnerabilities[1].cveID"),
        (str(path), None, "vulnerabilities[2]"),
    ]
    assert problems[0].reason == "not a YYYY-MM-DD date: '2026/01/29'"


def test_kev_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "kev.json"
    path.write_text('{"catalogVersion": "1"}')
    with pytest.raises(FeedFormatError, match="is not a kev catalog"):
        list(KevReader().read(path))


def test_epss_subset() -> None:
    records = list(EpssReader().read(EPSS))
    assert records[0] == FeedInfo(
        feed="epss",
        version="v2025.03.14",
        date=dt.datetime(2026, 1, 30, 12, 55, tzinfo=dt.UTC),
        path=str(EPSS),
    )
    scores = records[1:]
    assert len(scores) == 2000
    assert all(isinstance(s, EpssScore) for s in scores)
    assert scores[0] == EpssScore(cve_id="CVE-1999-0001", epss=0.01151, percentile=0.78086)


def test_epss_plain_csv_with_broken_rows(tmp_path: Path) -> None:
    with gzip.open(EPSS, "rt", newline="") as fh:
        lines = fh.read().splitlines(keepends=True)[:12]
    lines[3] = "CVE-1999-0002,1.5,0.9\n"  # line 4: epss out of range
    lines[5] = "CVE-1999-00X,0.1,0.2\n"  # line 6: bad id
    lines[7] = "CVE-1999-0007,0.1\n"  # line 8: a column short
    lines[9] = "CVE-1999-0009,0.1,abc\n"  # line 10: not a number
    path = tmp_path / "epss.csv"
    path.write_text("".join(lines))
    records = list(EpssReader().read(path))
    problems = [r for r in records if isinstance(r, Problem)]
    assert sum(isinstance(r, EpssScore) for r in records) == 10 - 4
    assert [(p.line, p.record, p.field) for p in problems] == [
        (4, "CVE-1999-0002", "epss"),
        (6, None, "cve"),
        (8, "CVE-1999-0007", None),
        (10, "CVE-1999-0009", "percentile"),
    ]
    assert problems[0].reason == "'1.5' is outside 0..1"
    assert problems[2].reason == "expected 3 columns, got 2"
    assert all(p.source == str(path) for p in problems)


def test_epss_truncated_gzip_raises_naming_the_file(tmp_path: Path) -> None:
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(EPSS.read_bytes()[: EPSS.stat().st_size // 2])
    records = EpssReader().read(cut)
    seen = [next(records) for _ in range(100)]
    assert isinstance(seen[0], FeedInfo)
    with pytest.raises(FeedFormatError, match=r"cut\.csv\.gz is a damaged or truncated gzip"):
        list(records)  # rows before the cut were yielded; the importer rolls back


def test_epss_wrong_header(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("cve,score\nCVE-1999-0001,0.1\n")
    with pytest.raises(FeedFormatError, match=r"x\.csv:1 is not an epss csv"):
        list(EpssReader().read(path))
