"""Inventory: what is installed where.

Collectors (one module each) read one kind of package database or document; the registry
:data:`COLLECTORS` picks them by name. :func:`scan_root` scans a mounted filesystem root
with every collector that finds its database there; :func:`collect_fleet_asset` builds one
asset's :class:`~patchwarden.model.Inventory` from the sources its fleet-file entry names
(:mod:`patchwarden.inventory.fleet`), and :func:`collect_fleet_rows` the same as inventory
rows, the form a fleet scan streams (:mod:`patchwarden.collect`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

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
from patchwarden.model import Asset, InstalledPackage, Inventory, InventoryRow, inventory_rows

__all__ = [
    "COLLECTORS",
    "Collector",
    "FleetRows",
    "collect_fleet_asset",
    "collect_fleet_rows",
    "load_sbom",
    "scan_root",
]

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


T = TypeVar("T")
_Read = Callable[[Collector, Path, str | None], list[T]]


def _packages(collector: Collector, path: Path, distro: str | None) -> list[InstalledPackage]:
    return collector.collect(path, distro=distro)


def _rows(collector: Collector, path: Path, distro: str | None) -> list[InventoryRow]:
    return collector.collect_rows(path, distro=distro)


def _scan(root: Path, distro: str | None, read: _Read[T]) -> tuple[list[T], list[str]]:
    found_items: list[T] = []
    sources: list[str] = []
    for name in _ROOT_COLLECTORS:
        collector = COLLECTORS[name]
        for found in collector.locate(root):
            found_items.extend(read(collector, found, distro))
            sources.append(f"{name}:{found}")
    return found_items, sources


def _unique(packages: list[InstalledPackage]) -> tuple[InstalledPackage, ...]:
    return tuple(dict.fromkeys(packages))


def scan_root(root: Path, asset: Asset) -> Inventory:
    """Inventory of a mounted filesystem ``root``: os-release plus every located database."""
    distro = read_os_release(root)
    packages, sources = _scan(root, distro, _packages)
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
    packages, distro, sources = _collect(fa, _packages, list)
    return Inventory(
        asset=fa.asset,
        packages=_unique(packages),
        distro=distro,
        source="; ".join(sources),
        collected_at=dt.datetime.now(dt.UTC),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetRows:
    """What :func:`collect_fleet_rows` found for one fleet-file asset."""

    rows: list[InventoryRow]
    """Every source's rows (:meth:`Collector.collect_rows`), concatenated: each source's are
    sorted and distinct, the whole not yet."""
    distro: str | None
    """The distro, found as :func:`collect_fleet_asset` finds it."""
    source: str
    """The sources read, as :attr:`~patchwarden.model.Inventory.source` names them."""


def collect_fleet_rows(fa: FleetAsset) -> FleetRows:
    """:func:`collect_fleet_asset` as inventory rows, through each collector's fast row path
    (:meth:`Collector.collect_rows`): what a fleet scan streams, with no
    :class:`~patchwarden.model.InstalledPackage` per package."""
    rows, distro, sources = _collect(fa, _rows, inventory_rows)
    return FleetRows(rows=rows, distro=distro, source="; ".join(sources))


def _collect(
    fa: FleetAsset, read: _Read[T], convert: Callable[[list[InstalledPackage]], list[T]]
) -> tuple[list[T], str | None, list[str]]:
    """Read every source of ``fa`` with ``read`` (SBOMs and images: their packages through
    ``convert``); (what was read, distro, source names)."""
    src = fa.sources
    distro = read_os_release(src.root) if src.root is not None else None
    distro = distro or src.distro
    found: list[T] = []
    sources: list[str] = []
    if src.root is not None:
        items, names = _scan(src.root, distro, read)
        found.extend(items)
        sources.extend(names)
    for name, path in (
        ("dpkg", src.dpkg_status),
        ("rpm", src.rpm_list),
        ("apk", src.apk_installed),
        ("python", src.python),
        ("npm", src.npm_lock),
    ):
        if path is not None:
            found.extend(read(COLLECTORS[name], path, distro))
            sources.append(f"{name}:{path}")
    if src.sbom is not None:
        _subject, sbom_packages = load_sbom(src.sbom)
        found.extend(convert(sbom_packages))
        sources.append(f"sbom:{src.sbom}")
    if src.image is not None:
        image = scan_image(src.image, asset=fa.asset)
        found.extend(convert(list(image.inventory.packages)))
        distro = distro or image.inventory.distro
        digest = image.image.manifest_digest or image.image.config_digest
        sources.append(f"image:{src.image}@{digest}")
    return found, distro, sources
