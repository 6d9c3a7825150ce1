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

from patchwarden.model import InstalledPackage


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

    def locate(self, root: Path) -> list[Path]:
        """Where this collector's database lives under a filesystem ``root`` (empty: none)."""
        return []
