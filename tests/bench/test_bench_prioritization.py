"""Tests of benchmarks/prioritization.py: metric functions on a case table, and a run on a
small real subset of the shared data (tests/data/bench, see its README.md)."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

if TYPE_CHECKING:
    from benchmarks import prioritization as bench
else:
    # benchmarks/ is not an installed package: load the script from its path (registered in
    # sys.modules first, as dataclasses look their module up there).
    _spec = importlib.util.spec_from_file_location(
        "benchmarks.prioritization", ROOT / "benchmarks" / "prioritization.py"
    )
    bench = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = bench
    _spec.loader.exec_module(bench)

DATA = Path(__file__).resolve().parents[1] / "data" / "bench"
CASES: dict[str, list[dict[str, Any]]] = json.loads((DATA / "metric_cases.json").read_text())
KEV_THEN = DATA / "kev-2025.08.25-subset.json"
KEV_NOW = DATA / "kev-2026.01.29-subset.json"
EPSS = DATA / "epss-2026-01-30-subset.csv"
OVAL = DATA / "noble-oval-subset.xml"
PYPA = DATA / "pypa"


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [str(c["description"]) for c in cases]


@pytest.mark.parametrize("case", CASES["outcome"], ids=_ids(CASES["outcome"]))
def test_outcome_cases(case: dict[str, Any]) -> None:
    i, want = case["input"], case["expected"]
    got = bench.outcome(set(i["selected"]), set(i["exploited"]), i["size"])
    assert (got.tp, got.fp, got.fn, got.effort) == (
        want["tp"],
        want["fp"],
        want["fn"],
        want["effort"],
    )
    assert got.effort_share == pytest.approx(want["effort_share"])
    for name in ("coverage", "efficiency"):
        value = getattr(got, name)
        if want[name] is None:
            assert value is None
        else:
            assert value == pytest.approx(want[name])


@pytest.mark.parametrize("case", CASES["at_least"], ids=_ids(CASES["at_least"]))
def test_at_least_cases(case: dict[str, Any]) -> None:
    i = case["input"]
    assert sorted(bench.at_least(i["values"], i["threshold"])) == case["expected"]


@pytest.mark.parametrize("case", CASES["curve"], ids=_ids(CASES["curve"]))
def test_curve_cases(case: dict[str, Any]) -> None:
    i = case["input"]
    assert bench.curve(i["ranked"], set(i["exploited"])) == [tuple(p) for p in case["expected"]]


@pytest.mark.parametrize("case", CASES["tie_fair_tp"], ids=_ids(CASES["tie_fair_tp"]))
def test_tie_fair_tp_cases(case: dict[str, Any]) -> None:
    i = case["input"]
    got = bench.tie_fair_tp(i["order"], i["scores"], i["k"], set(i["exploited"]))
    assert got == pytest.approx(case["expected"])


def _args(out: Path) -> list[str]:
    return [
        "--kev-then",
        str(KEV_THEN),
        "--kev-now",
        str(KEV_NOW),
        "--epss",
        str(EPSS),
        "--oval",
        str(OVAL),
        "--pypa",
        str(PYPA),
        "--out",
        str(out),
    ]


def _epss_scores() -> dict[str, float]:
    lines = EPSS.read_text().splitlines()[1:]  # drop the #model_version comment line
    return {row["cve"]: float(row["epss"]) for row in csv.DictReader(lines)}


def _kev_ids(path: Path) -> set[str]:
    return {v["cveID"] for v in json.loads(path.read_text())["vulnerabilities"]}


def test_smoke_run_on_real_subset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(_args(tmp_path)) == 0
    printed = capsys.readouterr().out
    assert "== cvss: 14 CVEs, 3 exploited" in printed
    assert "NOT prospective" in printed
    report = json.loads((tmp_path / "prioritization.json").read_text())
    assert (tmp_path / "prioritization.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pops = {p["name"]: p for p in report["populations"]}

    # Independent oracle for the CVSS population: Canonical's own cvss_score attributes in
    # the OVAL subset, plus the one non-withdrawn PyPA advisory with a vector
    # (PYSEC-2023-246, CVE-2023-47627, CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N = 7.5).
    # PYSEC-2022-43059 is withdrawn, PYSEC-2020-102 (salt) has no severity.
    pattern = r'cvss_score="([0-9.]+)"[^>]*>(CVE-[0-9-]+)</cve>'
    oval = {cve: float(s) for s, cve in re.findall(pattern, OVAL.read_text())}
    cvss = oval | {"CVE-2023-47627": 7.5}
    kev_then, kev_now = _kev_ids(KEV_THEN), _kev_ids(KEV_NOW)
    cv = pops["cvss"]
    assert cv["size"] == len(cvss) == 14
    assert cv["exploited_ids"] == sorted(set(cvss) & kev_now)
    assert cv["exploited_ids"] == ["CVE-2022-22965", "CVE-2024-44308", "CVE-2024-44309"]
    rows = {r["strategy"]: r for r in cv["rows"]}
    for t in (7, 9):
        chosen = {c for c, s in cvss.items() if s >= t}
        row = rows[f"CVSS >= {t}"]
        assert row["effort"] == len(chosen)
        assert row["tp"] == len(chosen & kev_now)
        assert row["fn"] == 3 - row["tp"]

    # Temporal CVSS split: the three exploited CVEs were listed before T, so none is left.
    assert pops["cvss-temporal"]["size"] == 14 - 3
    assert pops["cvss-temporal"]["exploited"] == 0
    assert pops["cvss-temporal"]["temporal"] == "T = 2025-08-25"

    # EPSS populations, checked against the CSV directly.
    epss = _epss_scores()
    ep = pops["epss"]
    assert ep["size"] == len(epss)
    assert ep["exploited_ids"] == sorted(set(epss) & kev_now)
    chosen = {c for c, p in epss.items() if p >= 0.1}
    row = next(r for r in ep["rows"] if r["strategy"] == "EPSS >= 0.1")
    assert (row["effort"], row["tp"]) == (len(chosen), len(chosen & kev_now))
    assert not any(r["strategy"].startswith("CVSS") for r in ep["rows"])
    et = pops["epss-temporal"]
    assert et["size"] == len(set(epss) - kev_then)
    assert et["exploited_ids"] == sorted((kev_now - kev_then) & set(epss))
    assert et["exploited"] == 3

    # patchwarden at equal effort to CVSS >= 7 remediates exactly as many CVEs.
    top = next(r for r in cv["rows"] if r["strategy"].startswith("patchwarden top-"))
    assert top["effort"] == rows["CVSS >= 7"]["effort"]


def test_temporal_scorer_does_not_see_later_kev() -> None:
    data = bench.load(kev_then=KEV_THEN, kev_now=KEV_NOW, epss=EPSS, oval=OVAL, pypa=PYPA)
    pops = {p.name: p for p in bench.build_populations(data)}
    temporal = pops["epss-temporal"]
    assert temporal.exploited
    for cve in temporal.exploited:
        assert cve in data.kev_now
        assert not bench.risk_input(cve, data, temporal.known_kev, use_epss=True).kev
    # In the cross-sectional populations KEV is the outcome, so the scorer sees none of it.
    assert not pops["cvss"].known_kev
    assert not bench.risk_input("CVE-2022-22965", data, pops["cvss"].known_kev, use_epss=True).kev


def test_missing_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _args(tmp_path)
    args[args.index("--epss") + 1] = str(tmp_path / "nope.csv")
    assert bench.main(args) == 2
    err = capsys.readouterr().err
    assert "nope.csv" in err
    assert "no such file" in err
    assert "Traceback" not in err


def test_bad_oval_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.xml"
    bad.write_text(OVAL.read_text()[:5000])  # cut mid-element
    args = _args(tmp_path)
    args[args.index("--oval") + 1] = str(bad)
    assert bench.main(args) == 2
    err = capsys.readouterr().err
    assert "broken.xml" in err
    assert "not an oval xml file" in err


def test_swapped_kev_catalogs_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _args(tmp_path)
    args[args.index("--kev-then") + 1], args[args.index("--kev-now") + 1] = (
        str(KEV_NOW),
        str(KEV_THEN),
    )
    assert bench.main(args) == 2
    assert "lacks 3 cves" in capsys.readouterr().err
