"""Ubuntu USN OVAL reader on a real subset of Canonical's noble file (and the whole file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchwarden.errors import FeedFormatError, Problem
from patchwarden.intel import detect
from patchwarden.intel.interface import FeedInfo
from patchwarden.intel.ubuntu_oval import KERNEL_SKIP_FEED, UbuntuOvalReader
from patchwarden.match import AdvisoryIndex, match
from patchwarden.model import Advisory, FixState, PackageKey, SeverityScore

DATA = Path(__file__).resolve().parents[1] / "data" / "intel" / "ubuntu"
SUBSET = DATA / "noble-subset.usn.oval.xml"
FULL = (
    Path(__file__).resolve().parents[2].parent
    / "shared/data/ubuntu/oval/com.ubuntu.noble.usn.oval.xml"
)


def read(path: Path) -> tuple[dict[str, Advisory], list[Problem], list[FeedInfo]]:
    advisories: dict[str, Advisory] = {}
    problems: list[Problem] = []
    infos: list[FeedInfo] = []
    for record in UbuntuOvalReader().read(path):
        if isinstance(record, Advisory):
            assert record.id not in advisories
            advisories[record.id] = record
        elif isinstance(record, Problem):
            problems.append(record)
        else:
            assert isinstance(record, FeedInfo)
            infos.append(record)
    return advisories, problems, infos


def fixed_of(advisory: Advisory, name: str) -> list[str]:
    return sorted(
        e.version
        for a in advisory.affected
        if a.name == name
        for r in a.ranges
        for e in r.events
        if e.kind == "fixed"
    )


def test_subset_records() -> None:
    advisories, problems, infos = read(SUBSET)
    assert infos[0].feed == "ubuntu-oval"
    assert infos[0].version == "noble 2024-12-24T07:42:06"
    # USN-6718-3 (curl) has 4 CVEs; USN-7162-1 one; USN-6673-3, USN-6906-1 one each;
    # USN-6663-3 none (kept under its USN id). LSN-0104-1 checks the running kernel:
    # skipped by design and counted in a second FeedInfo, not a problem.
    assert "UBUNTU-24.04-USN-6663-3" in advisories
    assert all(a.affected and a.source == "ubuntu" for a in advisories.values())
    assert problems == []
    assert infos[1].feed == KERNEL_SKIP_FEED
    assert infos[1].version is not None
    assert infos[1].version.startswith("1 running-kernel/livepatch definitions")
    assert "LSN-0104-1" in infos[1].version
    crypto = advisories["UBUNTU-24.04-CVE-2024-26130"]
    assert crypto.aliases == ("CVE-2024-26130",)
    assert {a.ecosystem for a in crypto.affected} == {"Ubuntu:24.04"}
    # Binaries from the dpkg checks, plus the source name from the title.
    names = {a.name for a in crypto.affected}
    assert names == {"python3-cryptography", "python-cryptography-doc", "python-cryptography"}
    assert fixed_of(crypto, "python-cryptography") == ["41.0.7-4ubuntu0.1"]
    assert crypto.database_specific["usns"] == ["USN-6673-3"]
    assert SeverityScore(type="Ubuntu", score="medium") in crypto.severity
    # Debian Python Policy: python3-django is built from source python-django.
    django = advisories["UBUNTU-24.04-CVE-2024-41989"]
    assert {a.name for a in django.affected} == {
        "python3-django",
        "python-django-doc",
        "python-django",
    }


def test_ubuntu_fixed_versions_not_upstream() -> None:
    advisories, _, _ = read(SUBSET)
    openssl = advisories["UBUNTU-24.04-USN-6663-3"]
    assert fixed_of(openssl, "libssl3t64") == ["3.0.13-0ubuntu3.1"]  # the "0:" epoch dropped
    cvss = [a for a in advisories.values() if any(s.type == "CVSS_V3" for s in a.severity)]
    assert cvss, "expat's and django's CVEs carry CVSS vectors in the subset"
    for a in cvss:
        vector = next(s.score for s in a.severity if s.type == "CVSS_V3")
        assert vector.startswith("CVSS:3.")
        assert any("ubuntu" in v for af in a.affected for v in fixed_of(a, af.name))


def test_matching_uses_ubuntu_versions() -> None:
    advisories, _, _ = read(SUBSET)
    index = AdvisoryIndex.build(advisories.values())
    vulnerable = PackageKey(
        ecosystem="Ubuntu:24.04", name="python-cryptography", version="41.0.7-4"
    )
    fixed = PackageKey(
        ecosystem="Ubuntu:24.04", name="python-cryptography", version="41.0.7-4ubuntu0.1"
    )
    other_release = PackageKey(ecosystem="Ubuntu:22.04", name="python-cryptography", version="1")
    result = match([vulnerable, fixed, other_release], index)
    hits = result.matches[vulnerable]
    assert [m.advisory_id for m in hits] == ["UBUNTU-24.04-CVE-2024-26130"]
    assert hits[0].fix_state is FixState.FIXED
    assert hits[0].fixed_version == "41.0.7-4ubuntu0.1"
    assert fixed not in result.matches
    assert other_release not in result.matches


def test_detect() -> None:
    assert detect(SUBSET).name == "ubuntu-oval"


@pytest.mark.skipif(not FULL.exists(), reason="the shared data folder is not next to the repo")
def test_whole_real_file() -> None:
    advisories, problems, infos = read(FULL)
    # 260 patch definitions: 207 with dpkg checks, 53 kernel/livepatch ones skipped by design
    # (no problem, so importing the real file is not "partial").
    assert problems == []
    skipped = next(i for i in infos if i.feed == KERNEL_SKIP_FEED)
    assert skipped.version is not None
    assert skipped.version.startswith("53 running-kernel/livepatch definitions")
    cves = {a.aliases[0] for a in advisories.values() if a.aliases}
    assert len(advisories) == 510
    assert len(cves) == 503
    with_vector = [a for a in advisories.values() if any(s.type == "CVSS_V3" for s in a.severity)]
    assert len(with_vector) == 318


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not xml at all", "not well-formed xml"),
        ("<root/>", "root element is 'root'"),
        (
            '<oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5">'
            '<definitions><definition id="oval:com.ubuntu.warty:def:1" class="patch"/>'
            "</definitions></oval_definitions>",
            "unknown ubuntu release codename 'warty'",
        ),
        (
            '<oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5"/>',
            "no definition id",
        ),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(FeedFormatError, match=message) as info:
        list(UbuntuOvalReader().read(path))
    assert str(path) in str(info.value) or "warty" in str(info.value)


def test_broken_definition_stays_a_problem(tmp_path: Path) -> None:
    # A patch definition whose criterion names a test that is not in the file is malformed.
    path = tmp_path / "broken.xml"
    path.write_text(
        '<oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5">'
        '<definitions><definition id="oval:com.ubuntu.noble:def:1" class="patch">'
        "<metadata><title>USN-1-1 -- foo vulnerability</title></metadata>"
        '<criteria><criterion test_ref="oval:com.ubuntu.noble:tst:9"/></criteria>'
        "</definition></definitions></oval_definitions>"
    )
    _, problems, infos = read(path)
    assert [(p.record, p.field) for p in problems] == [("USN-1-1", "criteria")]
    assert "is not defined in the file" in problems[0].reason
    assert all(i.feed != KERNEL_SKIP_FEED for i in infos)


def test_definition_testing_nothing_stays_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "empty.xml"
    path.write_text(
        '<oval_definitions xmlns="http://oval.mitre.org/XMLSchema/oval-definitions-5">'
        '<definitions><definition id="oval:com.ubuntu.noble:def:1" class="patch">'
        "<metadata><title>USN-2-1 -- bar vulnerability</title></metadata>"
        "</definition></definitions></oval_definitions>"
    )
    _, problems, _ = read(path)
    assert [p.record for p in problems] == ["USN-2-1"]
    assert "tests nothing" in problems[0].reason
