"""Fleet collection (issue 8): worker processes, streaming, unchanged files left unread.

The fleets here are built from the demo's real inventory files (Debian 11 dpkg status
files, a CycloneDX SBOM of PyPI packages), one copy per asset so that each asset has files
of its own, and scanned against the demo's real advisory snapshot.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.pw_testkit import DEMO, DEMO_FEEDS
from typer.testing import CliRunner

from patchwarden.cli.main import app
from patchwarden.collect import (
    PARALLEL_FROM,
    RECENT_NS,
    CollectFailure,
    collect_fleet,
    prepare_fleet_asset,
    scan_fleet,
    source_signature,
)
from patchwarden.inventory import collect_fleet_asset
from patchwarden.inventory.fleet import InventorySources, load_fleet
from patchwarden.service import import_feeds, prepare_inventory
from patchwarden.store import Store
from patchwarden.store import schema as t

T0 = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
INVENTORIES = DEMO / "inventories"
KINDS = (
    ("dpkg_status", INVENTORIES / "web-stg-01" / "dpkg-status", "Debian:11"),
    ("dpkg_status", INVENTORIES / "web-01" / "var" / "lib" / "dpkg" / "status", "Debian:11"),
    (
        "dpkg_status",
        INVENTORIES / "relay-legacy-01" / "var" / "lib" / "dpkg" / "status",
        "Debian:10",
    ),
    ("sbom", INVENTORIES / "payments-api.cdx.json", None),
)
"""The plain-file sources the generated fleets cycle through: (field, file, distro)."""


def write_fleet(folder: Path, count: int) -> Path:
    """A fleet file of ``count`` assets, each with its own copy of one demo source file (and
    every third dpkg host with a copy of the SBOM beside it)."""
    lines = ["assets:"]
    for i in range(count):
        field, source, distro = KINDS[i % len(KINDS)]
        own = folder / f"host-{i:03d}" / source.name
        own.parent.mkdir(parents=True)
        shutil.copyfile(source, own)
        lines += [
            f"  - name: host-{i:03d}",
            f"    criticality: {1 + i % 5}",
            f"    internet_exposed: {'true' if i % 7 == 0 else 'false'}",
            "    inventory:",
            f"      {field}: {own}",
        ]
        if distro is not None:
            lines.append(f"      distro: '{distro}'")
        if i % 3 == 0 and field == "dpkg_status":
            bom = own.parent / "python.cdx.json"
            shutil.copyfile(KINDS[3][1], bom)
            lines.append(f"      sbom: {bom}")
    path = folder / "fleet.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_until_signed(folder: Path) -> None:
    """Wait until every file under ``folder`` is old enough to be signed (RECENT_NS)."""
    newest = max(p.stat().st_ctime_ns for p in folder.rglob("*") if p.is_file())
    time.sleep(max(0, newest + RECENT_NS - time.time_ns()) / 1e9 + 0.05)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("collect") / "template.db"
    store = Store.open(f"sqlite:///{path}")
    assert not import_feeds(store, list(DEMO_FEEDS), now=T0).failed
    store.close()
    return path


def _store(template: Path, path: Path) -> Store:
    path.write_bytes(template.read_bytes())
    return Store.open(f"sqlite:///{path}")


def _findings(store: Store) -> list[tuple[object, ...]]:
    return sorted(
        (f.asset, f.ecosystem, f.package, f.installed_version, f.vulnerability, f.fixed_version)
        for f in store.findings()
    )


def test_fleet_rows_equal_the_inventory_path() -> None:
    """The row path gives every demo asset (roots, site-packages, apk, SBOM) the rows,
    digest, distro and source the InstalledPackage path gives it."""
    for fa in load_fleet(DEMO / "fleet.yaml").assets:
        by_rows = prepare_fleet_asset(fa)
        by_packages = prepare_inventory(collect_fleet_asset(fa))
        assert by_rows.rows == by_packages.rows, fa.asset.id
        assert (by_rows.digest, by_rows.distro, by_rows.source, by_rows.unsupported) == (
            by_packages.digest,
            by_packages.distro,
            by_packages.source,
            by_packages.unsupported,
        )


def test_workers_scan_what_one_process_scans(template: Path, tmp_path: Path) -> None:
    """A fleet read by two worker processes is scanned exactly as one read in-process: same
    assets in fleet-file order, same findings, same audit trail subjects."""
    fleet = load_fleet(write_fleet(tmp_path / "fleet", PARALLEL_FROM + 6))
    reports, findings, packages = [], [], []
    for workers in (2, 0):
        store = _store(template, tmp_path / f"w{workers}.db")
        reports.append(scan_fleet(store, fleet, workers=workers))
        findings.append(_findings(store))
        with store.transaction() as conn:  # each package with the purl of its first host
            packages.append(sorted(conn.execute(sa.select(*t.packages.c)).all()))
        store.close()
    parallel, serial = reports
    assert [a.asset for a in parallel.assets] == [fa.asset.id for fa in fleet.assets]
    assert [(a.asset, a.packages, a.findings) for a in parallel.assets] == [
        (a.asset, a.packages, a.findings) for a in serial.assets
    ]
    assert findings[0] == findings[1]
    assert len(findings[0]) > 500
    assert packages[0] == packages[1]
    assert all(p.purl for p in packages[0])
    assert not parallel.errors


@pytest.mark.parametrize("workers", [0, 2])
def test_unchanged_files_are_not_read_again(template: Path, tmp_path: Path, workers: int) -> None:
    """After a fleet scan, an asset whose files kept their signature is sent by digest
    (no rows: nothing read); a rewritten file is read again, and an edited one rescanned."""
    fleet_file = write_fleet(tmp_path / "fleet", 8)
    fleet = load_fleet(fleet_file)
    store = _store(template, tmp_path / "pw.db")
    wait_until_signed(tmp_path / "fleet")
    first = scan_fleet(store, fleet, workers=workers)
    known = store.collected()
    assert set(known) == {fa.asset.id for fa in fleet.assets}
    again = [prepare_fleet_asset(fa, known[fa.asset.id]) for fa in fleet.assets]
    assert all(p.rows is None for p in again)
    assert [p.digest for p in again] == [known[fa.asset.id].digest for fa in fleet.assets]

    status = fleet.assets[0].sources.dpkg_status
    assert status is not None
    status.write_bytes(status.read_bytes())  # same content, new modification time
    wait_until_signed(tmp_path / "fleet")
    reread = prepare_fleet_asset(fleet.assets[0], known["host-000"])
    assert reread.rows is not None
    assert reread.digest == known["host-000"].digest

    # the packages of one of its findings are removed from the status file
    (finding, *_) = [f for f in store.findings() if f.asset == "host-000"]
    stanzas = status.read_text().split("\n\n")
    kept = [s for s in stanzas if s.partition("\n")[0][len("Package: ") :] not in finding.binaries]
    assert len(kept) < len(stanzas)
    status.write_text("\n\n".join(kept))
    second = scan_fleet(store, fleet, workers=workers)
    assert [a.asset for a in second.assets] == [fa.asset.id for fa in fleet.assets]
    matched = {a.asset for a in second.assets if a.matched}
    assert matched == {"host-000"}
    (host0,) = [a for a in second.assets if a.asset == "host-000"]
    assert host0.findings.resolved > 0
    assert sum(a.findings.new for a in first.assets) > sum(
        a.findings.new + a.findings.still_open for a in second.assets
    )
    store.close()


def test_a_broken_asset_is_reported_and_the_rest_scanned(template: Path, tmp_path: Path) -> None:
    fleet = load_fleet(write_fleet(tmp_path / "fleet", PARALLEL_FROM))
    broken = fleet.assets[5].sources.dpkg_status
    assert broken is not None
    broken.write_text("Package: openssl\nStatus install ok installed\n")
    store = _store(template, tmp_path / "pw.db")
    report = scan_fleet(store, fleet, workers=2)
    assert len(report.errors) == 1
    assert report.errors[0].startswith("asset 'host-005': ")
    assert str(broken) in report.errors[0]
    assert len(report.assets) == PARALLEL_FROM - 1
    failures = [r for r in collect_fleet(fleet.assets, workers=0) if isinstance(r, CollectFailure)]
    assert [f.asset for f in failures] == ["host-005"]
    store.close()


def test_signature_covers_files_and_fleet_entry(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Package: a\n")
    later = time.time_ns() + 10 * RECENT_NS

    def sign(sources: InventorySources) -> str | None:
        return source_signature(sources, now=later)

    sig = sign(InventorySources(dpkg_status=status, distro="Debian:12"))
    assert sig is not None
    assert sig != sign(InventorySources(dpkg_status=status, distro="Debian:11"))
    assert sig != sign(InventorySources(sbom=status, distro="Debian:12"))
    moved = tmp_path / "moved"
    os.link(status, moved)  # the same file under another path
    assert sig != sign(InventorySources(dpkg_status=moved, distro="Debian:12"))
    # folders and roots are always read
    assert sign(InventorySources(python=tmp_path)) is None
    assert sign(InventorySources(root=tmp_path)) is None
    assert sign(InventorySources(dpkg_status=tmp_path / "gone")) is None
    # a file changed within RECENT_NS is not signed ("racily clean": a same-size rewrite in
    # the same clock tick would keep its times)
    assert source_signature(InventorySources(dpkg_status=status, distro="Debian:12")) is None


def test_cli_scan_fleet_with_workers(template: Path, tmp_path: Path) -> None:
    """`scan --fleet --workers 2` lists every asset in --json; the table shows the 50 with
    the most open findings and says how many there are."""
    fleet = write_fleet(tmp_path / "fleet", PARALLEL_FROM)
    db = tmp_path / "pw.db"
    db.write_bytes(template.read_bytes())
    runner = CliRunner()
    args = ["--db", str(db), "scan", "--fleet", str(fleet), "--workers", "2"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [a["asset"] for a in doc["assets"]] == [f"host-{i:03d}" for i in range(PARALLEL_FROM)]
    assert all(a["inventory_changed"] for a in doc["assets"])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    assert f"{PARALLEL_FROM} assets (50 with the most open findings shown" in result.stdout
    assert f"{PARALLEL_FROM} unchanged assets not matched again" in result.stdout


def test_a_context_change_on_unread_files_is_stored_and_ranked(
    template: Path, tmp_path: Path
) -> None:
    """An asset whose files are unchanged (not read again) but whose fleet entry changed
    gets its new context stored and its findings scored again; the others keep theirs."""
    fleet_file = write_fleet(tmp_path / "fleet", 8)
    store = _store(template, tmp_path / "pw.db")
    wait_until_signed(tmp_path / "fleet")
    scan_fleet(store, load_fleet(fleet_file), workers=0, now=T0)
    before = {(f.asset, f.id): f.risk or 0.0 for f in store.ranked_findings()}
    text = fleet_file.read_text()
    assert "  - name: host-001\n    criticality: 2\n" in text
    fleet_file.write_text(
        text.replace(
            "  - name: host-001\n    criticality: 2\n", "  - name: host-001\n    criticality: 5\n"
        )
    )
    later = T0 + dt.timedelta(days=1)
    report = scan_fleet(store, load_fleet(fleet_file), workers=0, now=later)
    assert not any(a.matched for a in report.assets)  # nothing read, nothing matched again
    # the open findings of every asset, changed or not, count as seen by this scan
    seen = {f.last_seen for f in store.findings()}
    assert seen == {later}
    asset = store.get_asset("host-001")
    assert asset is not None
    assert asset.criticality == 5
    after = {(f.asset, f.id): f.risk or 0.0 for f in store.ranked_findings()}
    assert after.keys() == before.keys()
    changed = {key[0] for key in after if after[key] != before[key]}
    assert changed == {"host-001"}
    assert all(after[k] > before[k] for k in after if k[0] == "host-001")
    store.close()
