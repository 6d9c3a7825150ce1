"""The inventory interface: collectors that list what is installed.

A collector reads one kind of package database or document (a dpkg ``status`` file, an apk
``installed`` db, a ``site-packages`` folder, a CycloneDX SBOM, ...) and returns plain
:class:`~patchwarden.model.InstalledPackage` values. A malformed input raises
:class:`~patchwarden.errors.InventoryFormatError` naming the file and the record/field.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from patchwarden.model import InstalledPackage, InventoryRow, inventory_rows


class Collector(ABC):
    """Lists the packages one kind of package database records."""

    name: ClassVar[str]
    """Registry name (``dpkg``, ``rpm``, ``apk``, ``python``, ``npm``, ``cyclonedx``, ``spdx``)."""

    @abstractmethod
    def collect(self, path: Path, *, distro: str | None = None) -> list[InstalledPackage]:
        """Read ``path`` and return the packages found.

        ``distro`` is the OS ecosystem (``Debian:12``) read from ``/etc/os-release``; OS package
        collectors stamp it on each package's ``ecosystem``.
        """

    def collect_rows(self, path: Path, *, distro: str | None = None) -> list[InventoryRow]:
        """The packages :meth:`collect` finds, as the sorted distinct rows a scan stores.

        A collector that reads large, repetitive inputs (a fleet's dpkg status files) may
        override it with a faster path that gives exactly these rows and raises the same
        errors.
        """
        return inventory_rows(self.collect(path, distro=distro))

    def locate(self, root: Path) -> list[Path]:
        """Where this collector's database lives under a filesystem ``root`` (empty: none)."""
        return []
