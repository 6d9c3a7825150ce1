"""Alpine secdb reader on trimmed real secdb files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchwarden.errors import FeedFormatError, Problem
from patchwarden.intel.alpine import AlpineSecdbReader
from patchwarden.intel.interface import FeedInfo
from patchwarden.model import Advisory, EventKind, FixState

DATA = Path(__file__).resolve().parents[1] / "data" / "intel" / "alpine"


def read(path: Path) -> tuple[dict[str, Advisory], list[Problem], list[FeedInfo]]:
    advisories: dict[str, Advisory] = {}
    problems: list[Problem] = []
    infos: list[FeedInfo] = []
    for record in AlpineSecdbReader().read(path):
        if isinstance(record, Advisory):
            assert record.id not in advisories
            advisories[record.id] = record
        elif isinstance(record, Problem):
            problems.append(record)
        else:
            assert isinstance(record, FeedInfo)
            infos.append(record)
    return advisories, problems, infos


def expected_ids(path: Path) -> set[str]:
    data = json.loads(path.read_text())
    release = data["distroversion"]
    return {
        f"ALPINE-{release}-{p['pkg']['name']}-{token}"
        for p in data["packages"]
        for ids in p["pkg"].get("secfixes", {}).values()
        for text in ids
        for token in text.split()
    }


def test_v319_main_subset() -> None:
    path = DATA / "v3.19-main.json"
    advisories, problems, infos = read(path)
    assert problems == []
    assert [(i.feed, i.version) for i in infos] == [("alpine", "v3.19/main")]
    assert set(advisories) == expected_ids(path)
    assert len(advisories) == 254
    aom = advisories["ALPINE-v3.19-aom-CVE-2021-30473"]
    assert aom.source == "alpine"
    assert aom.upstream == ("CVE-2021-30473",)
    (aff,) = aom.affected
    assert (aff.ecosystem, aff.name, aff.state) == ("Alpine:v3.19", "aom", None)
    assert [(e.kind, e.version) for e in aff.ranges[0].events] == [
        (EventKind.INTRODUCED, "0"),
        (EventKind.FIXED, "3.1.1-r0"),
    ]
    assert aom.modified.tzinfo is not None


def test_fixed_version_zero_is_not_affected() -> None:
    advisories, _, _ = read(DATA / "v3.19-main.json")
    data = json.loads((DATA / "v3.19-main.json").read_text())
    zero = {
        f"ALPINE-v3.19-{p['pkg']['name']}-{t}"
        for p in data["packages"]
        for t in " ".join(p["pkg"]["secfixes"].get("0", [])).split()
    }
    assert zero  # the subset has real "0" entries (e.g. busybox, gnutls)
    for vid in zero:
        (aff,) = advisories[vid].affected
        assert aff.state is FixState.NOT_AFFECTED
        assert aff.ranges == ()


def test_joined_ids_split_and_real_placeholder_is_a_problem() -> None:
    path = DATA / "v3.20-community.json"
    advisories, problems, _ = read(path)
    assert "ALPINE-v3.20-gimp-CVE-2023-44441" in advisories
    assert "ALPINE-v3.20-gimp-ZDI-CAN-22093" in advisories
    # The real file lists 'CVE-????-????? TS-2024-005': the placeholder is reported, the
    # TS id is kept.
    (problem,) = problems
    assert problem.source == str(path)
    assert problem.record == "ALPINE-v3.20-tailscale-CVE-????-?????"
    assert problem.field is not None
    assert problem.field.endswith("['1.66.1-r0'][0]")
    assert "not an upstream id: 'CVE-????-?????'" in problem.reason
    assert "ALPINE-v3.20-tailscale-TS-2024-005" in advisories
    assert set(advisories) == expected_ids(path) - {problem.record}


def test_same_id_under_two_versions_gets_two_ranges(tmp_path: Path) -> None:
    path = tmp_path / "main.json"
    path.write_text(
        json.dumps(
            {
                "distroversion": "v3.19",
                "reponame": "main",
                "packages": [
                    {
                        "pkg": {
                            "name": "x",
                            "secfixes": {"1.0-r1": ["CVE-2024-1"], "1.2-r0": ["CVE-2024-1"]},
                        }
                    },
                    {
                        "pkg": {
                            "name": "y",
                            "secfixes": {
                                "bad version": ["CVE-2024-2"],
                                "2.0-r0": ["CVE-2024-2", "CVE-2024-3"],
                            },
                        }
                    },
                    {"pkg": {"name": "z", "secfixes": {"1.0-r0": "CVE-2024-4"}}},
                    {"pkg": "nope"},
                ],
            }
        )
    )
    advisories, problems, _ = read(path)
    (aff,) = advisories["ALPINE-v3.19-x-CVE-2024-1"].affected
    assert [r.events[1].version for r in aff.ranges] == ["1.0-r1", "1.2-r0"]
    # CVE-2024-2 is listed under a malformed version: dropped whole, never half a record.
    assert sorted(advisories) == ["ALPINE-v3.19-x-CVE-2024-1", "ALPINE-v3.19-y-CVE-2024-3"]
    assert [(p.record, p.field) for p in problems] == [
        ("y", "packages[1].pkg.secfixes['bad version']"),
        ("z", "packages[2].pkg.secfixes['1.0-r0']"),
        (None, "packages[3].pkg"),
    ]


def test_wrong_shape_raises(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"distroversion": "v3.19"}')
    with pytest.raises(FeedFormatError, match=r"x\.json is not an alpine secdb file"):
        list(AlpineSecdbReader().read(path))
    path.write_text('{"packages": []')
    with pytest.raises(FeedFormatError, match="is not valid json"):
        list(AlpineSecdbReader().read(path))
