"""The OSV matching rules, one JSON case table (tests/data/match/cases.json)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from patchwarden.match import AdvisoryIndex, SchemeLookup, match
from patchwarden.model import (
    Advisory,
    Affected,
    AffectedRange,
    EventKind,
    FixState,
    PackageKey,
    RangeEvent,
    RangeType,
    VulnId,
)

CASES_FILE = Path(__file__).resolve().parents[1] / "data" / "match" / "cases.json"
CASES: list[dict[str, Any]] = json.loads(CASES_FILE.read_text(encoding="utf-8"))
_EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def advisory_from_case(raw: Mapping[str, Any]) -> Advisory:
    """Build an Advisory from the OSV-like JSON of a case (plus ``affected[].state``)."""
    affected = []
    for entry in raw.get("affected", []):
        ranges = []
        for rng in entry.get("ranges", []):
            events = []
            for event in rng["events"]:
                ((kind, version),) = event.items()
                events.append(RangeEvent(kind=EventKind(kind), version=version))
            ranges.append(
                AffectedRange(
                    type=RangeType(rng["type"]), events=tuple(events), repo=rng.get("repo")
                )
            )
        state = entry.get("state")
        affected.append(
            Affected(
                ecosystem=entry["package"]["ecosystem"],
                name=entry["package"]["name"],
                ranges=tuple(ranges),
                versions=tuple(entry.get("versions", ())),
                state=FixState(state) if state else None,
            )
        )
    withdrawn = raw.get("withdrawn")
    modified = raw.get("modified")
    return Advisory(
        id=VulnId(raw["id"]),
        source="test",
        modified=dt.datetime.fromisoformat(modified) if modified else _EPOCH,
        withdrawn=dt.datetime.fromisoformat(withdrawn) if withdrawn else None,
        upstream=tuple(raw.get("upstream", ())),
        affected=tuple(affected),
    )


def key_from_case(raw: list[str]) -> PackageKey:
    """``[ecosystem, name, version]`` to a PackageKey."""
    ecosystem, name, version = raw
    return PackageKey(ecosystem=ecosystem, name=name, version=version)


def test_case_table_is_well_formed() -> None:
    descriptions = [case["description"] for case in CASES]
    assert len(descriptions) == len(set(descriptions)) >= 25
    for case in CASES:
        assert set(case) == {"description", "input", "expected"}, case["description"]


@pytest.mark.parametrize("case", CASES, ids=[c["description"][:60] for c in CASES])
def test_match_case(case: dict[str, Any], schemes: SchemeLookup) -> None:
    advisories = [advisory_from_case(a) for a in case["input"]["advisories"]]
    keys = [key_from_case(k) for k in case["input"]["keys"]]
    expected = case["expected"]
    index = AdvisoryIndex.build(advisories, schemes=schemes)
    result = match(keys, index)

    got = sorted(
        (
            (m.key.ecosystem, m.key.name, m.key.version),
            m.advisory_id,
            m.fix_state.value,
            m.fixed_version,
            m.vulnerability_ids,
        )
        for key, found in result.matches.items()
        for m in found
        if m.key == key
    )
    want = sorted(
        (
            tuple(e["key"]),
            e["advisory_id"],
            e["fix_state"],
            e["fixed_version"],
            tuple(e.get("vulnerability_ids", [e["advisory_id"]])),
        )
        for e in expected["matches"]
    )
    assert got == want
    assert all(found for found in result.matches.values())

    got_skips = sorted(
        (
            s.reason.value,
            s.advisory_id or "",
            (s.key.ecosystem, s.key.name, s.key.version) if s.key else (),
        )
        for s in result.skipped
    )
    want_skips = sorted(
        (s["reason"], s.get("advisory_id", ""), tuple(s.get("key", ())))
        for s in expected["skipped"]
    )
    assert got_skips == want_skips
    for skip in result.skipped:
        assert skip.message
        assert skip.message == skip.message.lower() or "'" in skip.message
    if "index_unknown_ecosystem_count" in expected:
        assert index.unknown_ecosystem_count == expected["index_unknown_ecosystem_count"]
        assert len(index.skipped) == expected["index_unknown_ecosystem_count"]


def test_skip_messages_name_record_and_field(schemes: SchemeLookup) -> None:
    case = next(c for c in CASES if c["input"]["advisories"][0]["id"] == "PYSEC-2019-125")
    index = AdvisoryIndex.build(
        [advisory_from_case(a) for a in case["input"]["advisories"]], schemes=schemes
    )
    result = match([PackageKey(ecosystem="PyPI", name="steam", version="1.0")], index)
    (skip,) = result.skipped
    assert "'PYSEC-2019-125'" in skip.message
    assert "affected[0].ranges[0].events[1].fixed" in skip.message
    assert "'2019-09-12'" in skip.message


def test_index_counts(schemes: SchemeLookup) -> None:
    advisories = [advisory_from_case(a) for c in CASES for a in c["input"]["advisories"]]
    index = AdvisoryIndex.build(advisories, schemes=schemes)
    withdrawn_ids = {a.id for a in advisories if a.withdrawn is not None}
    assert index.withdrawn_count == len(withdrawn_ids)
    assert index.superseded_count == 1
    assert index.advisory_count == len({a.id for a in advisories}) - len(withdrawn_ids)
