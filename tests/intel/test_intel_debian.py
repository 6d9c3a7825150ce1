"""Debian readers: real DSA/DLA list subsets and the tracker JSON dump fixture."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from patchwarden.errors import FeedFormatError, Problem
from patchwarden.intel.debian import DebianJsonReader, DebianListReader
from patchwarden.model import Advisory, EventKind, FixState

DATA = Path(__file__).resolve().parents[1] / "data" / "intel" / "debian"


def read_list(path: Path) -> tuple[dict[str, Advisory], list[Problem]]:
    advisories: dict[str, Advisory] = {}
    problems: list[Problem] = []
    for record in DebianListReader().read(path):
        if isinstance(record, Advisory):
            advisories[record.id] = record
        else:
            assert isinstance(record, Problem), record
            problems.append(record)
    return advisories, problems


def fixed_version(adv: Advisory, ecosystem: str) -> str | None:
    for aff in adv.affected:
        if aff.ecosystem == ecosystem:
            for rng in aff.ranges:
                for event in rng.events:
                    if event.kind is EventKind.FIXED:
                        return event.version
    return None


def test_dsa_subset_counts_and_known_record() -> None:
    advisories, problems = read_list(DATA / "DSA-list")
    assert len(advisories) + len(problems) == 54  # header lines in the file
    adv = advisories["DSA-5380-1"]
    assert adv.source == "debian"
    assert adv.summary == "security update"
    assert adv.upstream == ("CVE-2023-1393",)
    assert adv.modified == adv.published == dt.datetime(2023, 3, 29, tzinfo=dt.UTC)
    (aff,) = adv.affected
    assert (aff.ecosystem, aff.name, aff.state) == ("Debian:11", "xorg-server", None)
    assert [(e.kind, e.version) for e in aff.ranges[0].events] == [
        (EventKind.INTRODUCED, "0"),
        (EventKind.FIXED, "2:1.20.11-1+deb11u6"),
    ]
    assert fixed_version(advisories["DSA-5376-1"], "Debian:11") == "2.4.56-1~deb11u1"
    assert len(advisories["DSA-5378-1"].upstream) == 5


def test_dsa_markers_comments_and_notes() -> None:
    advisories, _ = read_list(DATA / "DSA-list")
    ooo = advisories["DSA-2275-1"]
    assert fixed_version(ooo, "Debian:6") == "1:3.2.1-11+squeeze3"
    lenny = next(a for a in ooo.affected if a.ecosystem == "Debian:5")
    assert lenny.state is FixState.NOT_AFFECTED
    assert not lenny.ranges
    assert lenny.database_specific == {"comment": "Vulnerable code not present"}
    eol = advisories["DSA-3699-1"].affected[0]
    assert (eol.ecosystem, eol.state) == ("Debian:8", FixState.WILL_NOT_FIX)
    assert eol.database_specific == {"reason": "end-of-life"}
    unfixed = [a for adv in advisories.values() for a in adv.affected if a.state is FixState.NO_FIX]
    assert {a.ecosystem for a in unfixed} == {"Debian:3.0"}
    # Markers quoted inside NOTE: lines are notes, not release statements.
    glibc = advisories["DSA-1605-1"]
    assert glibc.affected == ()
    assert glibc.database_specific["notes"][0].startswith("<unfixed> (backport too complicated")
    # An old id without revision is kept as given.
    assert advisories["DSA-1304"].affected
    commented = [
        a for adv in advisories.values() for a in adv.affected if "urgency" in a.database_specific
    ]
    assert commented
    assert all(a.database_specific["urgency"] == "medium" for a in commented)


def test_real_malformed_version_is_a_problem() -> None:
    advisories, problems = read_list(DATA / "DSA-list")
    (problem,) = problems
    assert "DSA-423" not in advisories
    assert problem.source == str(DATA / "DSA-list")
    assert problem.record == "DSA-423"
    assert problem.field == "affected[0].version"
    assert problem.reason == "not a debian version: 'kernel-image-2.4.17-ia64'"
    lines = (DATA / "DSA-list").read_text().splitlines()
    assert problem.line is not None
    assert "kernel-image-2.4.17-ia64 kernel-image-2.4.17-ia64" in lines[problem.line - 1]


def test_dla_subset() -> None:
    advisories, problems = read_list(DATA / "DLA-list")
    assert (len(advisories), problems) == (30, [])
    assert fixed_version(advisories["DLA-3372-1"], "Debian:10") == "2:1.20.4-1+deb10u9"
    assert all(a.ecosystem == "Debian:10" for adv in advisories.values() for a in adv.affected)


def test_no_dsa_ignored_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "list"
    path.write_text(
        "[01 Apr 2023] DSA-9001-1 foo - security update\n"
        "\t{CVE-2023-0001 CVE-2023-0002}\n"
        "\t[bullseye] - foo <no-dsa> (Minor issue)\n"
        "\t[buster] - foo <ignored>\n"
        "[31 Feb 2023] DSA-9002-1 bar - security update\n"
        "\t[bullseye] - bar 1.0-1\n"
        "[01 Apr 2023] DSA-9003-1 baz - security update\n"
        "\t[hamm2] - baz 1.0-1\n"
        "[01 Apr 2023] DSA-9004-1 qux - security update\n"
        "\t[bullseye] - qux <fixed-someday>\n"
        "garbage header\n"
        "\t[bullseye] - skipped 1.0\n"
        "[01 Apr 2023] DSA-9005-1 ok - security update\n"
        "\t[bullseye] - ok 2.0-1\n"
    )
    advisories, problems = read_list(path)
    assert sorted(advisories) == ["DSA-9001-1", "DSA-9005-1"]
    states = [
        (a.ecosystem, a.state, a.database_specific) for a in advisories["DSA-9001-1"].affected
    ]
    assert states == [
        ("Debian:11", FixState.WILL_NOT_FIX, {"reason": "no-dsa", "comment": "Minor issue"}),
        ("Debian:10", FixState.WILL_NOT_FIX, {"reason": "ignored"}),
    ]
    got = [(p.record, p.field, p.line, p.reason) for p in problems]
    assert got == [
        ("DSA-9002-1", "date", 5, "invalid date '31 Feb 2023' (day is out of range for month)"),
        ("DSA-9003-1", "affected[0].release", 8, "unknown debian release 'hamm2'"),
        ("DSA-9004-1", "affected[0].version", 10, "unknown marker '<fixed-someday>'"),
        (None, None, 11, "unrecognised header line 'garbage header'"),
    ]


def test_not_a_list_raises(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n[01 Apr 2023] DSA-1-1 x - y\n")
    with pytest.raises(FeedFormatError, match=r"notes\.txt:1 is not a DSA/DLA list"):
        list(DebianListReader().read(path))


def test_json_dump_fixture(tmp_path: Path) -> None:
    path = tmp_path / "json"
    shutil.copyfile(DATA / "tracker-dump.json", path)
    mtime = dt.datetime(2023, 4, 2, 12, 0, tzinfo=dt.UTC)
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    records = list(DebianJsonReader().read(path))
    assert all(isinstance(r, Advisory) for r in records)
    advisories: dict[str, Advisory] = {r.id: r for r in records if isinstance(r, Advisory)}
    assert len(advisories) == 6
    xorg = advisories["DEBIAN-CVE-2023-1393"]
    assert xorg.upstream == ("CVE-2023-1393",)
    assert xorg.modified == mtime
    # sid has no Debian:<n> ecosystem and is not emitted.
    assert [a.ecosystem for a in xorg.affected] == ["Debian:10", "Debian:11"]
    assert fixed_version(xorg, "Debian:11") == "2:1.20.11-1+deb11u6"
    ooo = advisories["DEBIAN-CVE-2011-2685"].affected
    assert [(a.ecosystem, a.state) for a in ooo] == [
        ("Debian:5", FixState.NOT_AFFECTED),
        ("Debian:6", None),
    ]
    xen_buster = advisories["DEBIAN-CVE-2022-42331"].affected[1]
    assert xen_buster.state is FixState.WILL_NOT_FIX
    assert xen_buster.database_specific["reason"] == "end-of-life"
    apache_buster = advisories["DEBIAN-CVE-2006-20001"].affected[1]
    assert apache_buster.state is FixState.WILL_NOT_FIX
    assert apache_buster.database_specific["nodsa"] == "Minor issue"
    mellon = advisories["DEBIAN-CVE-2021-3639"]
    assert mellon.affected[1].state is FixState.WILL_NOT_FIX  # urgency unimportant
    assert mellon.database_specific["packages"]["libapache2-mod-auth-mellon"]["debianbug"] == 991730
    mpv = [(a.ecosystem, a.state) for a in advisories["DEBIAN-CVE-2020-19824"].affected]
    assert mpv == [
        ("Debian:10", None),
        ("Debian:11", FixState.UNDER_INVESTIGATION),
        ("Debian:13", FixState.NO_FIX),
    ]
    assert advisories["DEBIAN-CVE-2020-19824"].affected[2].database_specific == {"urgency": "low"}


def test_json_dump_bad_entry_drops_that_cve_whole(tmp_path: Path) -> None:
    path = tmp_path / "dump.json"
    path.write_text(
        '{"a": {"CVE-2023-1": {"releases": {"bullseye": {"status": "resolved",'
        ' "fixed_version": "1.0-1"}}}},'
        ' "b": {"CVE-2023-1": {"releases": {"bullseye": {"status": "fixed"}}},'
        '       "CVE-2023-2": {"releases": {"buster": {"status": "open"}}}},'
        ' "c": []}'
    )
    records = list(DebianJsonReader().read(path))
    problems = [r for r in records if isinstance(r, Problem)]
    assert [r.id for r in records if isinstance(r, Advisory)] == ["DEBIAN-CVE-2023-2"]
    assert [(p.record, p.field) for p in problems] == [
        ("CVE-2023-1", "b.CVE-2023-1.releases.bullseye.status"),
        (None, "c"),
    ]
    assert "unknown status 'fixed'" in problems[0].reason


def test_json_dump_wrong_shape_raises(tmp_path: Path) -> None:
    path = tmp_path / "dump.json"
    path.write_text("[1, 2]")
    with pytest.raises(FeedFormatError, match="top level is a list"):
        list(DebianJsonReader().read(path))
