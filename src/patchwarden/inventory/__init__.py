"""Inventory: what is installed where.

Collectors (one module each) read one kind of package database or document; the registry
:data:`COLLECTORS` picks them by name. :func:`scan_root` scans a mounted filesystem root
with every collector that finds its database there; :func:`collect_fleet_asset` builds one
asset's :class:`~patchwarden.model.Inventory` from the sources its fleet-file entry names
(:mod:`patchwarden.inventory.fleet`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from patchwarden.inventory.apk import ApkCollector
from patchwarden.inventory.cyclonedx import CycloneDxCollector
from patchwarden.inventory.dpkg import DpkgCollector
from patchwarden.inventory.fleet import FleetAsset
from patchwarden.inventory.interface import Collector
from patchwarden.inventory.npm import NpmCollector
from patchwarden.inventory.oci import scan_image
from patchwarden.inventory.osrelease import read_os_release
from patchwarden.inventory.python import PythonCollector
from patchwarden.inventory.rpm import RpmCollector
from patchwarden.inventory.sbom import load_sbom
from patchwarden.inventory.spdx import SpdxCollector
from patchwarden.model import Asset, InstalledPackage, Inventory

__all__ = ["COLLECTORS", "Collector", "collect_fleet_asset", "load_sbom", "scan_root"]

COLLECTORS: dict[str, Collector] = {
    c.name: c
    for c in (
        DpkgCollector(),
        RpmCollector(),
        ApkCollector(),
        PythonCollector(),
        NpmCollector(),
        CycloneDxCollector(),
        SpdxCollector(),
    )
}
"""Collectors by registry name."""

_ROOT_COLLECTORS = ("dpkg", "rpm", "apk", "python")
"""Collectors whose database has a fixed place under a filesystem root."""


def _scan(root: Path, distro: str | None) -> tuple[list[InstalledPackage], list[str]]:
    packages: list[InstalledPackage] = []
    sources: list[str] = []
    for name in _ROOT_COLLECTORS:
        collector = COLLECTORS[name]
        for found in collector.locate(root):
            packages.extend(collector.collect(found, distro=distro))
            sources.append(f"{name}:{found}")
    return packages, sources


def _unique(packages: list[InstalledPackage]) -> tuple[InstalledPackage, ...]:
    return tuple(dict.fromkeys(packages))


def scan_root(root: Path, asset: Asset) -> Inventory:
    """Inventory of a mounted filesystem ``root``: os-release plus every located database."""
    distro = read_os_release(root)
    packages, sources = _scan(root, distro)
    return Inventory(
        asset=asset,
        packages=_unique(packages),
        distro=distro,
        source="; ".join(sources) or f"root:{root}",
        collected_at=dt.datetime.now(dt.UTC),
    )


def collect_fleet_asset(fa: FleetAsset) -> Inventory:
    """One Inventory from every source a fleet-file asset names.

    The distro is read from the root's os-release when there is a root and it has one, else
    taken from the ``distro`` field. Identical packages found twice are kept once. An
    ``image`` is scanned layer by layer (:func:`~patchwarden.inventory.oci.scan_image`); its
    os-release gives the distro when neither the root nor the ``distro`` field does.
    """
    src = fa.sources
    distro = read_os_release(src.root) if src.root is not None else None
    distro = distro or src.distro
    packages: list[InstalledPackage] = []
    sources: list[str] = []
    if src.root is not None:
        found, names = _scan(src.root, distro)
        packages.extend(found)
        sources.extend(names)
    for name, path in (
        ("dpkg", src.dpkg_status),
        ("rpm", src.rpm_list),
        ("apk", src.apk_installed),
        ("python", src.python),
        ("npm", src.npm_lock),
    ):
        if path is not None:
            packages.extend(COLLECTORS[name].collect(path, distro=distro))
            sources.append(f"{name}:{path}")
    if src.sbom is not None:
        _subject, sbom_packages = load_sbom(src.sbom)
        packages.extend(sbom_packages)
        sources.append(f"sbom:{src.sbom}")
    if src.image is not None:
        image = scan_image(src.image, asset=fa.asset)
        packages.extend(image.inventory.packages)
        distro = distro or image.inventory.distro
        digest = image.image.manifest_digest or image.image.config_digest
        sources.append(f"image:{src.image}@{digest}")
    return Inventory(
        asset=fa.asset,
        packages=_unique(packages),
        distro=distro,
        source="; ".join(sources),
        collected_at=dt.datetime.now(dt.UTC),
    )
