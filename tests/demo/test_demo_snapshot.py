"""The bundled demo: its snapshot is a verbatim subset of the real data, its fleet loads, and
importing + scanning it gives exactly the findings derived independently from the records.

``expected_demo_findings.json`` was produced by ``derive_demo_expected.py`` (an oracle that
parses the snapshot itself and orders versions with ``dpkg --compare-versions``,
``packaging`` and an apk comparison) and reviewed by hand; the spot checks below restate a
few of its rows with the advisory lines they come from.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.pw_testkit import DEMO_FEEDS
from typer.testing import CliRunner

from patchwarden.cli.main import app
from patchwarden.inventory import collect_fleet_asset
from patchwarden.inventory.fleet import load_fleet

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "src" / "patchwarden" / "demo"
DATA = DEMO / "data"
SHARED = REPO.parent / "shared" / "data"
EXPECTED = Path(__file__).resolve().parent / "expected_demo_findings.json"

SNAPSHOT_PATHS = DEMO_FEEDS
FLEET_DEBIAN_SOURCES = {
    "adduser",
    "apache2",
    "coreutils",
    "curl",
    "exim4",
    "glibc",
    "libxml2",
    "openssl",
    "policykit-1",
    "redis",
    "sudo",
    "zlib",
}
_CVE = re.compile(r"CVE-\d{4}-\d{4,}")

needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"the shared real data set is not at {SHARED}"
)


# --------------------------------------------------------------------------- snapshot


def test_snapshot_is_small() -> None:
    """The bundled data stays well under the 400 KB budget."""
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert 100_000 < total < 400_000


def test_sources_md_names_every_file() -> None:
    """SOURCES.md names each data file, its commit and that it is a subset."""
    text = (DATA / "SOURCES.md").read_text(encoding="utf-8")
    for needle in (
        "osv/",
        "debian/DSA/list",
        "debian/DLA/list",
        "alpine/v3.19/main.json",
        "kev/known_exploited_vulnerabilities-2026.01.29.json",
        "epss/epss_scores-2026-01-30.csv.gz",
        "3ccb612573e2511ab5cad7dafecd838605c80cda",
        "32127b7f220cd2d9fd9d0a5bb4affaa90a079ad9",
        "f6c0ccb7a8496268cc4e74fbc67660c8b0351293",
        "125be897eb4e342187ccea3a89b5f4a7f70db4fa",
        "subset",
        "count",
    ):
        assert needle in text, needle


@needs_shared
def test_osv_files_are_identical_to_the_originals() -> None:
    """Every bundled PyPA record is byte-for-byte the shared file of the same path."""
    files = sorted((DATA / "osv").rglob("*.yaml"))
    assert len(files) == 83
    for f in files:
        original = SHARED / "osv" / "pypi" / "vulns" / f.relative_to(DATA / "osv")
        assert f.read_bytes() == original.read_bytes(), f
    # whole folders, except django (PYSEC-2020-* and later)
    for folder in (DATA / "osv").iterdir():
        original = SHARED / "osv" / "pypi" / "vulns" / folder.name
        expected = {
            p.name
            for p in original.glob("*.yaml")
            if folder.name != "django" or int(p.stem.split("-")[1]) >= 2020
        }
        assert {p.name for p in folder.glob("*.yaml")} == expected, folder.name


def _entries(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        if re.match(r"^\[[^\]]*\]\s+D[SL]A-", line):
            out.append(line)
        else:
            assert out, f"text before the first entry: {line!r}"
            out[-1] += line
    return out


def _selected(entry: str) -> bool:
    return any(
        (m := re.match(r"^\s+\[(\w+)\] - (\S+)", line))
        and m[1] in {"bullseye", "buster"}
        and m[2] in FLEET_DEBIAN_SOURCES
        for line in entry.splitlines()[1:]
    )


@needs_shared
@pytest.mark.parametrize(("kind", "count"), [("DSA", 40), ("DLA", 12)])
def test_debian_lists_are_whole_verbatim_entries(kind: str, count: int) -> None:
    """Each bundled DSA/DLA entry is a whole original entry, in the original order, and
    every original entry the selection rule picks is there."""
    bundled = _entries((DATA / "debian" / kind / "list").read_text(encoding="utf-8"))
    original_text = (SHARED / "debian" / "security-tracker" / kind / "list").read_text(
        encoding="utf-8"
    )
    original = _entries(original_text)
    assert len(bundled) == count
    positions = [original.index(e) for e in bundled]  # ValueError if not verbatim
    assert positions == sorted(positions)
    assert bundled == [e for e in original if _selected(e)]


@needs_shared
def test_alpine_secdb_is_a_trimmed_copy() -> None:
    """Same header fields; kept package entries equal to the original's, text verbatim."""
    text = (DATA / "alpine" / "v3.19" / "main.json").read_text(encoding="utf-8")
    bundled = json.loads(text)
    original_text = (SHARED / "alpine" / "secdb" / "v3.19" / "main.json").read_text(
        encoding="utf-8"
    )
    original = json.loads(original_text)
    assert {k: v for k, v in bundled.items() if k != "packages"} == {
        k: v for k, v in original.items() if k != "packages"
    }
    by_name = {p["pkg"]["name"]: p for p in original["packages"]}
    names = [p["pkg"]["name"] for p in bundled["packages"]]
    assert names == ["apk-tools", "busybox", "curl", "musl", "nghttp2", "nginx", "openssl", "zlib"]
    for p in bundled["packages"]:
        assert p == by_name[p["pkg"]["name"]]
    head = text.split('"packages": [')[0]
    assert original_text.startswith(head)
    body = text.split('"packages": [\n', 1)[1].rsplit("\n\t]", 1)[0].rstrip(",")
    for block in re.split(r"\n(?=\t\t\{)", body):
        assert block.rstrip(",") in original_text


def _snapshot_cves() -> set[str]:
    cves: set[str] = set()
    for f in (DATA / "osv").rglob("*.yaml"):
        rec = yaml.safe_load(f.read_text(encoding="utf-8"))
        cves.update(a for a in rec.get("aliases") or () if _CVE.fullmatch(a))
    for kind in ("DSA", "DLA"):
        cves.update(_CVE.findall((DATA / "debian" / kind / "list").read_text(encoding="utf-8")))
    cves.update(_CVE.findall((DATA / "alpine" / "v3.19" / "main.json").read_text("utf-8")))
    return cves


@needs_shared
def test_kev_is_the_catalog_trimmed_to_snapshot_cves() -> None:
    """Real header fields, unchanged entries, exactly the KEV CVEs the snapshot names."""
    bundled = json.loads(
        (DATA / "kev" / "known_exploited_vulnerabilities-2026.01.29.json").read_text("utf-8")
    )
    original = json.loads(
        (SHARED / "kev" / "known_exploited_vulnerabilities-2026.01.29.json").read_text("utf-8")
    )
    for key in ("title", "catalogVersion", "dateReleased"):
        assert bundled[key] == original[key]
    assert bundled["count"] == len(bundled["vulnerabilities"]) == 6  # adjusted from 1501
    by_cve = {v["cveID"]: v for v in original["vulnerabilities"]}
    for v in bundled["vulnerabilities"]:
        assert v == by_cve[v["cveID"]]
    assert {v["cveID"] for v in bundled["vulnerabilities"]} == _snapshot_cves() & set(by_cve)


@needs_shared
def test_epss_rows_are_original_rows_for_snapshot_cves() -> None:
    """Real comment and header lines, then original rows for exactly the snapshot's CVEs."""
    with gzip.open(DATA / "epss" / "epss_scores-2026-01-30.csv.gz", "rt", encoding="utf-8") as fh:
        bundled = fh.read().splitlines()
    with gzip.open(SHARED / "epss" / "epss_scores-2026-01-30.csv.gz", "rt", encoding="utf-8") as fh:
        original = fh.read().splitlines()
    assert bundled[:2] == original[:2]
    assert bundled[0].startswith("#model_version:v2025.03.14,score_date:2026-01-30")
    wanted = _snapshot_cves()
    assert bundled[2:] == [row for row in original[2:] if row.split(",", 1)[0] in wanted]
    assert len(bundled) - 2 == 390


# --------------------------------------------------------------------------- fleet


def test_fleet_file_loads_with_varied_context() -> None:
    """The sample fleet loads and every asset's inventory can be collected."""
    fleet = load_fleet(DEMO / "fleet.yaml")
    assets = {str(fa.asset.id): fa for fa in fleet.assets}
    assert list(assets) == [
        "web-01",
        "web-stg-01",
        "relay-legacy-01",
        "app-01",
        "edge-proxy",
        "payments-api",
    ]
    assert {fa.asset.environment.value for fa in fleet.assets} == {"prod", "staging", "dev"}
    assert assets["web-01"].asset.internet_exposed
    assert assets["web-01"].asset.service == assets["web-stg-01"].asset.service
    assert assets["edge-proxy"].asset.kind.value == "image"
    collected = {str(fa.asset.id): collect_fleet_asset(fa) for fa in fleet.assets}
    assert {k: (inv.distro, len(inv.packages)) for k, inv in collected.items()} == {
        "web-01": ("Debian:11", 19),  # apache2-doc is only config-files: not installed
        "web-stg-01": ("Debian:11", 19),
        "relay-legacy-01": ("Debian:10", 9),
        "app-01": (None, 12),
        "edge-proxy": ("Alpine:v3.19", 12),
        "payments-api": (None, 12),  # the purl-less static-assets component is skipped
    }
    libssl = next(p for p in collected["web-01"].packages if p.name == "libssl1.1")
    assert (libssl.source_name, libssl.version) == ("openssl", "1.1.1n-0+deb11u3")


def test_python_inventory_is_metadata_only() -> None:
    """The sample site-packages holds METADATA files and nothing else (no code)."""
    files = [p for p in (DEMO / "inventories" / "app-01").rglob("*") if p.is_file()]
    assert files
    assert {p.name for p in files} == {"METADATA"}


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database with the snapshot imported and the sample fleet scanned."""
    db = str(tmp_path_factory.mktemp("demo") / "demo.db")
    runner = CliRunner()
    imported = runner.invoke(app, ["--db", db, "-q", "feeds", "import", *map(str, SNAPSHOT_PATHS)])
    assert imported.exit_code == 0, imported.output
    scanned = runner.invoke(app, ["--db", db, "-q", "scan", "--fleet", str(DEMO / "fleet.yaml")])
    assert scanned.exit_code == 0, scanned.output
    return db


def _findings(db: str, *args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["--db", db, "findings", "--json", *args])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_import_counts(demo_db: str) -> None:
    """Every snapshot file imports cleanly, with the record counts SOURCES.md states."""
    result = CliRunner().invoke(app, ["--db", demo_db, "feeds", "list", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)["counts"]
    assert counts["advisories"] == 83 + 40 + 12 + 226


def test_findings_json_has_the_public_fields(demo_db: str) -> None:
    """``findings --json`` carries the field names the demo and reports rely on."""
    rows = _findings(demo_db)
    required = {
        "asset",
        "ecosystem",
        "package",
        "installed_version",
        "vulnerability",
        "aliases",
        "fixed_version",
        "severity",
        "kev",
        "epss",
    }
    assert rows
    for row in rows:
        assert required <= row.keys()


def test_findings_are_exactly_the_independently_derived_ones(demo_db: str) -> None:
    """Each asset's findings equal the oracle's, field by field (116 in all)."""
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    assert len(expected) == 116
    keys = list(expected[0])
    got = sorted(tuple(json.dumps(r[k]) for k in keys) for r in _findings(demo_db))
    want = sorted(tuple(json.dumps(r[k]) for k in keys) for r in expected)
    assert got == want


def _by_key(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["asset"], r["package"], r["vulnerability"]): r for r in rows}


def test_spot_checks_against_the_advisory_lines(demo_db: str) -> None:
    """A few rows restated from the records they come from."""
    rows = _by_key(_findings(demo_db))
    # DSA-5343-1 openssl {CVE-2022-2097 CVE-2022-4304 CVE-2022-4450 CVE-2023-0215
    # CVE-2023-0286} [bullseye] - openssl 1.1.1n-0+deb11u4; web-01 has 1.1.1n-0+deb11u3.
    for cve in (
        "CVE-2022-2097",
        "CVE-2022-4304",
        "CVE-2022-4450",
        "CVE-2023-0215",
        "CVE-2023-0286",
    ):
        row = rows[("web-01", "openssl", cve)]
        assert row["fixed_version"] == "1.1.1n-0+deb11u4"
        assert row["installed_version"] == "1.1.1n-0+deb11u3"
        assert row["ecosystem"] == "Debian:11"
        assert set(row["binaries"]) == {"libssl1.1", "openssl"}
        # the staging twin already has 1.1.1n-0+deb11u4
        assert ("web-stg-01", "openssl", cve) not in rows
    # DSA-5103-1 [bullseye] - openssl 1.1.1k-1+deb11u2 (CVE-2022-0778): already fixed.
    assert ("web-01", "openssl", "CVE-2022-0778") not in rows
    # DSA-5059-1 policykit-1 {CVE-2021-4034} [bullseye] 0.105-31+deb11u1; CISA KEV lists it.
    pwnkit = rows[("web-01", "policykit-1", "CVE-2021-4034")]
    assert (pwnkit["fixed_version"], pwnkit["kev"]) == ("0.105-31+deb11u1", True)
    assert pwnkit["epss"] == pytest.approx(0.87848)
    # DSA-4839-1 sudo {CVE-2021-3156} [buster] 1.8.27-1+deb10u3 on the Debian 10 relay.
    baron = rows[("relay-legacy-01", "sudo", "CVE-2021-3156")]
    assert (baron["fixed_version"], baron["kev"]) == ("1.8.27-1+deb10u3", True)
    # sudo on bullseye is at DSA-5321-1's version: nothing open.
    assert not [k for k in rows if k[0] == "web-01" and k[1] == "sudo"]
    # Jinja2 2.10: PYSEC-2019-217 (fixed 2.10.1) and PYSEC-2021-66 (fixed 2.11.3) only;
    # PYSEC-2014-8, PYSEC-2014-82 and PYSEC-2019-220 were fixed before 2.10.
    jinja = {k[2]: r for k, r in rows.items() if k[:2] == ("app-01", "jinja2")}
    assert {k: r["fixed_version"] for k, r in jinja.items()} == {
        "CVE-2019-10906": "2.10.1",
        "CVE-2020-28493": "2.11.3",
    }
    assert "PYSEC-2019-217" in jinja["CVE-2019-10906"]["aliases"]
    # payments-api has Jinja2 2.10.1: only PYSEC-2021-66 remains.
    assert [k[2] for k in rows if k[:2] == ("payments-api", "jinja2")] == ["CVE-2020-28493"]
    # secdb v3.19 openssl "3.1.7-r1": ["CVE-2024-9143"]; the image has libcrypto3 3.1.4-r1.
    alpine = rows[("edge-proxy", "openssl", "CVE-2024-9143")]
    assert (alpine["ecosystem"], alpine["installed_version"]) == ("Alpine:v3.19", "3.1.4-r1")
    assert alpine["fixed_version"] == "3.1.7-r1"
    # nghttp2 "1.57.0-r0": ["CVE-2023-44487"] (KEV): the image's 1.58.0-r0 is fixed.
    assert not [k for k in rows if k[2] == "CVE-2023-44487"]
    assert sum(1 for r in rows.values() if r["kev"]) == 5


# --------------------------------------------------------------------------- make demo


@pytest.mark.slow
def test_demo_script_runs(tmp_path: Path) -> None:
    """scripts/demo.sh succeeds end to end and writes the JSON export."""
    venv_cli = REPO / ".venv" / "bin" / "patchwarden"
    if not venv_cli.exists():
        pytest.skip(f"{venv_cli} is missing (make demo creates it)")
    env = {**os.environ, "PATCHWARDEN_DEMO_OUT": str(tmp_path)}
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "demo.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for step in range(1, 9):
        assert f"==== {step}/8 " in result.stdout
    assert (tmp_path / "plan.html").is_file()
    assert (tmp_path / "report" / "report.html").is_file()
    assert "predates bookworm" in result.stdout
    rows = json.loads((tmp_path / "findings.json").read_text(encoding="utf-8"))
    assert len([r for r in rows if r["asset"] in {"web-01", "app-01", "edge-proxy"}]) == 76
    assert (tmp_path / "demo.db").is_file()
