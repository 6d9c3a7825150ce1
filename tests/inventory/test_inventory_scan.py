"""scan_root and collect_fleet_asset on assembled filesystem roots and the sample fleet file."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from patchwarden.inventory import COLLECTORS, collect_fleet_asset, scan_root
from patchwarden.inventory.fleet import load_fleet
from patchwarden.inventory.interface import Collector
from patchwarden.inventory.python import is_distro_managed
from patchwarden.model import Asset, AssetId

DATA = Path(__file__).resolve().parents[1] / "data" / "inventory"


def test_registry() -> None:
    assert set(COLLECTORS) == {"dpkg", "rpm", "apk", "python", "npm", "cyclonedx", "spdx"}
    assert all(c.name == n for n, c in COLLECTORS.items())
    assert all(type(c).collect is not Collector.collect for c in COLLECTORS.values())


def test_scan_debian_root_with_python(tmp_path: Path) -> None:
    """A root assembled from this machine's os-release, a real dpkg subset and a Debian
    dist-packages folder copied from this machine (python3-yaml's PyYAML-6.0.dist-info)."""
    root = tmp_path / "root"
    shutil.copytree(DATA / "debian12-root", root)
    dist = root / "usr" / "lib" / "python3" / "dist-packages"
    dist.mkdir(parents=True)
    (dist / "PyYAML-6.0.dist-info").mkdir()
    (dist / "PyYAML-6.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0\n"
    )
    before = dt.datetime.now(dt.UTC)
    inventory = scan_root(root, Asset(id=AssetId("web-01")))
    assert inventory.distro == "Debian:12"
    assert inventory.asset.id == "web-01"
    assert inventory.collected_at is not None
    assert inventory.collected_at >= before
    assert inventory.source == f"dpkg:{root}/var/lib/dpkg/status; python:{dist}"
    ecosystems = {p.ecosystem for p in inventory.packages}
    assert ecosystems == {"Debian:12", "PyPI"}
    assert len(inventory.packages) == 15
    pyyaml = next(p for p in inventory.packages if p.ecosystem == "PyPI")
    # Debian's python3-yaml is both a dpkg package and a PyPI distribution: kept, and marked.
    assert pyyaml.name == "pyyaml"
    assert is_distro_managed(pyyaml.location or "")
    deb = next(p for p in inventory.packages if p.name == "python3-yaml")
    assert deb.source_name == "pyyaml"


def test_scan_alpine_root() -> None:
    inventory = scan_root(DATA / "alpine319-root", Asset(id=AssetId("runner")))
    assert inventory.distro == "Alpine:v3.19"
    assert {p.ecosystem for p in inventory.packages} == {"Alpine:v3.19"}
    assert len(inventory.packages) == 11


def test_collect_every_fleet_asset() -> None:
    fleet = load_fleet(DATA / "fleet" / "fleet.yaml")
    by_id = {fa.asset.id: collect_fleet_asset(fa) for fa in fleet.assets}
    assert by_id[AssetId("web-01")].distro == "Debian:12"
    assert len(by_id[AssetId("web-01")].packages) == 14
    assert by_id[AssetId("alpine-runner")].distro == "Alpine:v3.19"
    rocky = by_id[AssetId("rocky-db")]
    assert rocky.distro == "Rocky Linux:9"
    assert {p.ecosystem for p in rocky.packages} == {"Rocky Linux:9"}
    assert next(p for p in rocky.packages if p.name == "openssl-libs").purl == (
        "pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?arch=x86_64&distro=rocky-9&epoch=1"
    )
    frontend = by_id[AssetId("frontend")]
    assert {p.ecosystem for p in frontend.packages} == {"npm", "Debian:12"}
    assert len(frontend.packages) == 5 + 14
    assert frontend.source.startswith("dpkg:")
    orders = by_id[AssetId("orders-image")]
    assert orders.distro is None
    assert len(orders.packages) == 5
