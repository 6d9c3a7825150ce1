"""OSV reader: real PyPA YAML records, an all.zip built from them, and malformed input."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import pytest
import yaml

from patchwarden.errors import FeedFormatError, Problem
from patchwarden.intel.osv import OsvReader, load_document
from patchwarden.model import Advisory, EventKind, RangeType

DATA = Path(__file__).resolve().parents[1] / "data" / "intel" / "osv"
PYPA = DATA / "pypa"
UTC = dt.UTC


def advisories(path: Path, reader: OsvReader | None = None) -> dict[str, Advisory]:
    out: dict[str, Advisory] = {}
    for record in (reader or OsvReader()).read(path):
        assert isinstance(record, Advisory), record
        out[record.id] = record
    return out


def only_problems(path: Path) -> list[Problem]:
    records = list(OsvReader().read(path))
    assert all(isinstance(r, Problem) for r in records), records
    return [r for r in records if isinstance(r, Problem)]


def write(tmp_path: Path, name: str, record: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(record))
    return path


def base_record(**extra: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": "TEST-1",
        "modified": "2024-01-02T03:04:05Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}
                ],
            }
        ],
    }
    record.update(extra)
    return record


def test_tree_reads_every_real_record() -> None:
    recs = advisories(PYPA)
    assert len(recs) == 33
    assert len(list(PYPA.rglob("*.yaml"))) == 33
    assert all(r.source == "osv" and r.modified.tzinfo is UTC for r in recs.values())


def test_withdrawn_record_and_yaml_strings() -> None:
    adv = advisories(PYPA / "redis" / "PYSEC-2023-73.yaml")["PYSEC-2023-73"]
    assert adv.withdrawn == dt.datetime(2023, 6, 6, 10, 37, tzinfo=UTC)
    assert adv.modified == dt.datetime(2023, 6, 27, 18, 49, 56, 911238, tzinfo=UTC)
    assert adv.published == dt.datetime(2023, 5, 18, 20, 15, tzinfo=UTC)
    assert adv.aliases == ("CVE-2023-31655",)
    (aff,) = adv.affected
    assert (aff.ecosystem, aff.name, aff.purl) == ("PyPI", "redis", "pkg:pypi/redis")
    # '1.34' is quoted in the file and 0.6.0 is not: both stay strings.
    assert aff.versions[:4] == ("0.6.0", "0.6.1", "1.34", "1.34.1")
    assert len(aff.versions) == 114  # the 114 `  - <version>` lines under `versions:`
    assert aff.versions[-1] == "5.0.0rc1"
    assert aff.ranges[0].events[0].kind is EventKind.INTRODUCED
    withdrawn = [r.id for r in advisories(PYPA).values() if r.withdrawn is not None]
    assert len(withdrawn) == 4


def test_unquoted_yaml_timestamp_is_parsed_as_utc() -> None:
    # apache-skywalking/PYSEC-2020-342.yaml writes `modified:`/`published:` unquoted.
    text = (PYPA / "apache-skywalking" / "PYSEC-2020-342.yaml").read_text()
    assert "\npublished: 2020" in text
    adv = advisories(PYPA / "apache-skywalking" / "PYSEC-2020-342.yaml")["PYSEC-2020-342"]
    assert adv.published is not None
    assert adv.published.tzinfo is UTC
    assert adv.severity
    assert adv.severity[0].type == "CVSS_V3"
    assert adv.severity[0].score.startswith("CVSS:3.")


def test_severity_git_ranges_last_affected_and_related() -> None:
    recs = advisories(PYPA)
    with_severity = [r for r in recs.values() if r.severity]
    assert len(with_severity) == 7
    py = recs["PYSEC-2022-42969"]
    kinds = [e.kind for a in py.affected for rg in a.ranges for e in rg.events]
    assert EventKind.LAST_AFFECTED in kinds
    git = [
        rg for r in recs.values() for a in r.affected for rg in a.ranges if rg.type is RangeType.GIT
    ]
    assert git
    assert all(rg.repo and rg.repo.startswith("http") for rg in git)
    assert recs["PYSEC-2023-184"].related


def test_json_list_document_and_zip_of_real_records(tmp_path: Path) -> None:
    """An osv.dev-style all.zip built from the real YAML records (converted to JSON)."""
    archive = tmp_path / "all.zip"
    originals = advisories(PYPA)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(PYPA.rglob("*.yaml")):
            raw = load_document(path.read_bytes(), path.name)
            zf.writestr(f"{raw['id']}.json", json.dumps(raw))
        zf.writestr("../../evil/../PYSEC-X.json", json.dumps(base_record(id="PYSEC-X")))
        zf.writestr("/abs/README.txt", "not a record")
    recs = advisories(archive)
    assert set(recs) == set(originals) | {"PYSEC-X"}
    assert recs["PYSEC-2023-73"] == originals["PYSEC-2023-73"]
    assert not (tmp_path / "evil").exists()


def test_zip_entry_over_the_cap_is_a_problem(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    big = json.dumps(base_record(details="x" * 5000))
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("BIG.json", big)
        zf.writestr("OK.json", json.dumps(base_record(id="OK-1")))
    records = list(OsvReader(max_entry_bytes=1000).read(archive))
    problems = [r for r in records if isinstance(r, Problem)]
    assert [r.id for r in records if isinstance(r, Advisory)] == ["OK-1"]
    assert len(problems) == 1
    assert problems[0].source == f"{archive}!BIG.json"
    assert "over the 1000 cap" in problems[0].reason


def test_truncated_zip_raises_feed_format_error(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(PYPA.rglob("*.yaml"))[:5]:
            zf.writestr(path.name, path.read_bytes())
    cut = tmp_path / "cut.zip"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(FeedFormatError, match=r"cut\.zip is not a readable zip archive"):
        list(OsvReader().read(cut))


def test_bad_range_type_names_file_record_and_field(tmp_path: Path) -> None:
    record = base_record()
    record["affected"][0]["ranges"].append(  # type: ignore[index]
        {"type": "NUMERIC", "events": [{"introduced": "0"}]}
    )
    path = write(tmp_path, "bad.json", record)
    (problem,) = only_problems(path)
    assert problem.source == str(path)
    assert problem.record == "TEST-1"
    assert problem.field == "affected[0].ranges[1].type"
    assert "unknown range type 'NUMERIC'" in problem.reason


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"modified": None}, "modified", "required field is missing"),
        ({"modified": "2024-01-02"}, "modified", "not an rfc 3339 timestamp"),
        ({"aliases": "CVE-2024-1"}, "aliases", "expected a list of strings, got string"),
        ({"aliases": ["CVE-1", 2]}, "aliases[1]", "expected a string, got number"),
        ({"summary": ["x"]}, "summary", "expected a string, got list"),
        ({"severity": [{"type": "CVSS_V3"}]}, "severity[0].score", "required field is missing"),
        ({"references": [{"url": 5}]}, "references[0].url", "expected a string"),
        ({"database_specific": []}, "database_specific", "expected an object, got list"),
    ],
)
def test_malformed_fields_are_problems(
    tmp_path: Path, change: dict[str, object], field: str, reason: str
) -> None:
    record = base_record(**change)
    if change.get("modified", "") is None:
        del record["modified"]
    (problem,) = only_problems(write(tmp_path, "r.json", record))
    assert (problem.record, problem.field) == ("TEST-1", field)
    assert reason in problem.reason


@pytest.mark.parametrize(
    ("events", "field", "reason"),
    [
        ([{"introduced": "0", "fixed": "1"}], "events[0]", "exactly one key, got 2"),
        ([{"introduced": "0"}, {"patched": "1"}], "events[1]", "unknown event 'patched'"),
        ([{"fixed": "1"}], "events", "at least one introduced event"),
        ([], "events", "non-empty list"),
        ([{"introduced": 0}], "events[0].introduced", "expected a version string"),
    ],
)
def test_malformed_events(
    tmp_path: Path, events: list[dict[str, object]], field: str, reason: str
) -> None:
    record = base_record()
    record["affected"][0]["ranges"][0]["events"] = events  # type: ignore[index]
    (problem,) = only_problems(write(tmp_path, "r.json", record))
    assert problem.field == f"affected[0].ranges[0].{field}"
    assert reason in problem.reason


def test_unknown_ecosystem_is_kept(tmp_path: Path) -> None:
    record = base_record()
    record["affected"][0]["package"]["ecosystem"] = "Hackage"  # type: ignore[index]
    (adv,) = advisories(write(tmp_path, "r.json", record)).values()
    assert adv.affected[0].ecosystem == "Hackage"


def test_deeply_nested_junk_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    nested: object = {}
    for _ in range(200):
        nested = {"x": nested}
    (tree / "nested.json").write_text(json.dumps(base_record(database_specific=nested)))
    (tree / "ok.yaml").write_text(yaml.safe_dump(base_record(id="OK-2")))
    records = list(OsvReader().read(tree))
    assert [r.id for r in records if isinstance(r, Advisory)] == ["OK-2"]
    problems = {Path(p.source).name: p for p in records if isinstance(p, Problem)}
    assert "nested too deeply" in problems["deep.json"].reason
    assert problems["nested.json"].field == "database_specific"
    assert "nested deeper than" in problems["nested.json"].reason


def test_invalid_single_file_raises(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"id": "X", ')
    with pytest.raises(FeedFormatError, match=r"x\.json is not an osv record: not valid json"):
        list(OsvReader().read(bad))
    scalar = tmp_path / "y.json"
    scalar.write_text("42")
    with pytest.raises(FeedFormatError, match="top level is a number"):
        list(OsvReader().read(scalar))


def test_yaml_syntax_error_in_tree_is_a_problem_with_position(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("id: X\nmodified: [unclosed\n")
    (problem,) = only_problems(tmp_path)
    assert problem.source.endswith("a.yaml")
    assert "not valid yaml" in problem.reason
    assert "line" in problem.reason
