"""CSAF 2.0 reader on a hand-written document in the exact CSAF 2.0 shape (see the README)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from patchwarden.errors import FeedFormatError, Problem
from patchwarden.intel import detect
from patchwarden.intel.csaf import CsafReader
from patchwarden.match import AdvisoryIndex, match
from patchwarden.model import Advisory, FixState, PackageKey

DATA = Path(__file__).resolve().parents[1] / "data" / "intel" / "csaf"


def read(path: Path) -> tuple[dict[str, Advisory], list[Problem]]:
    advisories: dict[str, Advisory] = {}
    problems: list[Problem] = []
    for record in CsafReader().read(path):
        if isinstance(record, Advisory):
            advisories[record.id] = record
        elif isinstance(record, Problem):
            problems.append(record)
    return advisories, problems


def test_product_status_and_remediations() -> None:
    advisories, problems = read(DATA / "advisory.json")
    assert sorted(advisories) == [
        "CSAF:EXAMPLE-SA-2024-0001:CVE-2023-50782",
        "CSAF:EXAMPLE-SA-2024-0001:CVE-2024-0727",
        "CSAF:EXAMPLE-SA-2024-0001:CVE-2024-26130",
    ]
    fixed = advisories["CSAF:EXAMPLE-SA-2024-0001:CVE-2024-26130"]
    assert fixed.aliases == ("CVE-2024-26130", "GHSA-6vqw-3v5j-54x4")
    assert fixed.severity[0].type == "CVSS_V3"
    by_name = {a.name: a for a in fixed.affected}
    crypto = by_name["python-cryptography"]
    assert crypto.ecosystem == "Ubuntu:24.04"
    # The fixed product reached through a relationship gives the vendor's fixed version.
    assert [e.version for e in crypto.ranges[0].events] == ["0", "41.0.7-4ubuntu0.1"]
    assert crypto.versions == ("41.0.7-4",)
    assert crypto.database_specific["remediations"][0]["category"] == "vendor_fix"
    assert by_name["openssl"].state is FixState.NOT_AFFECTED
    wontfix = advisories["CSAF:EXAMPLE-SA-2024-0001:CVE-2023-50782"].affected[0]
    assert wontfix.state is FixState.WILL_NOT_FIX
    assert [r["category"] for r in wontfix.database_specific["remediations"]] == [
        "no_fix_planned",
        "workaround",
    ]
    investigating = advisories["CSAF:EXAMPLE-SA-2024-0001:CVE-2024-0727"]
    assert investigating.affected[0].state is FixState.UNDER_INVESTIGATION
    assert investigating.database_specific["cpe_only"] == [
        "cpe:/o:canonical:ubuntu_linux:24.04::~~lts~~~"
    ]
    assert [(p.record, p.field) for p in problems] == [
        (
            "EXAMPLE-SA-2024-0001 vulnerabilities[3]",
            "vulnerabilities[3].product_status.known_affected[0]",
        )
    ]
    assert "'NO-SUCH-PRODUCT' is not in the product tree" in problems[0].reason


def test_matching() -> None:
    advisories, _ = read(DATA / "advisory.json")
    index = AdvisoryIndex.build(advisories.values())
    old = PackageKey(ecosystem="Ubuntu:24.04", name="python-cryptography", version="41.0.7-4")
    new = PackageKey(
        ecosystem="Ubuntu:24.04", name="python-cryptography", version="41.0.7-4ubuntu0.1"
    )
    openssl = PackageKey(ecosystem="Ubuntu:24.04", name="openssl", version="3.0.13-0ubuntu3.1")
    result = match([old, new, openssl], index)
    states = {(m.advisory_id, m.fix_state) for m in result.matches[old]}
    assert states == {
        ("CSAF:EXAMPLE-SA-2024-0001:CVE-2024-26130", FixState.FIXED),
        ("CSAF:EXAMPLE-SA-2024-0001:CVE-2023-50782", FixState.WILL_NOT_FIX),
    }
    assert [(m.advisory_id, m.fix_state) for m in result.matches[new]] == [
        ("CSAF:EXAMPLE-SA-2024-0001:CVE-2023-50782", FixState.WILL_NOT_FIX)
    ]
    assert [(m.advisory_id, m.fix_state) for m in result.matches[openssl]] == [
        ("CSAF:EXAMPLE-SA-2024-0001:CVE-2024-0727", FixState.UNDER_INVESTIGATION)
    ]


def test_detect() -> None:
    assert detect(DATA / "advisory.json").name == "csaf"


def _doc(**document: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "category": "csaf_vex",
        "csaf_version": "2.0",
        "tracking": {"id": "X-1", "current_release_date": "2024-01-01T00:00:00Z"},
    }
    base.update(document)
    return {"document": base, "vulnerabilities": []}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"document": {"csaf_version": "1.0"}}, "not a csaf 2.0 document"),
        (_doc(tracking={"current_release_date": "2024-01-01T00:00:00Z"}), "tracking.id"),
        (
            _doc(tracking={"id": "X-1", "current_release_date": "yesterday"}),
            "not an rfc 3339 timestamp",
        ),
    ],
)
def test_bad_documents(tmp_path: Path, content: dict[str, Any], message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(FeedFormatError, match=message):
        list(CsafReader().read(path))
