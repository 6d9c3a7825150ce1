"""SBOM documents (CycloneDX, SPDX): shared result type, purl handling and auto-detection.

:func:`load_sbom` reads a CycloneDX (1.4-1.6) or SPDX (2.2/2.3) JSON document, telling them
apart by their top-level ``bomFormat`` / ``spdxVersion`` fields. Each component or package
with a ``purl`` becomes an :class:`~patchwarden.model.InstalledPackage` through
:func:`patchwarden.purls.purl_to_package`. Components without a purl, or whose purl type
patchwarden has no advisories for (``pkg:generic``, ``pkg:github``, ...), cannot be matched:
they are not errors, they are counted in :attr:`SbomDocument.skipped` (by bom-ref/SPDXID)
so a report can say how much of the SBOM was not looked at. A purl that does not parse IS an
error (:class:`~patchwarden.errors.InventoryFormatError` naming the file and component).

Distro purls may carry the source package in the ``upstream`` qualifier (as syft writes
them: ``upstream=openssl`` or ``upstream=openssl@3.0.11-1`` for deb/apk,
``upstream=openssl-3.0.7-24.el9.src.rpm`` for rpm); it becomes ``source_name`` /
``source_version``, else the binary name and version are used, as for dpkg without
``Source:``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from patchwarden.ecosystems import Ecosystem
from patchwarden.errors import InvalidPurl, InventoryFormatError, UnknownEcosystem
from patchwarden.inventory.rpm import split_source_rpm
from patchwarden.model import InstalledPackage
from patchwarden.purls import purl_to_package


@dataclass(frozen=True, slots=True, kw_only=True)
class SbomDocument:
    """What one SBOM says."""

    format: str
    """``cyclonedx`` or ``spdx``."""
    subject: str | None
    """What the SBOM describes (CycloneDX ``metadata.component.name``, SPDX described
    package), when it says."""
    packages: tuple[InstalledPackage, ...]
    """Components that have a purl of a supported type."""
    skipped: tuple[str, ...] = ()
    """bom-refs/SPDXIDs of components left out: no purl, or an unsupported purl type."""


def read_json(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; InventoryFormatError when unreadable or not an object."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InventoryFormatError(f"{path}: cannot read {what} JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InventoryFormatError(f"{path}: {what} top level is not a JSON object")
    return doc


def package_from_purl(purl: str, *, source: str, ref: str) -> InstalledPackage | None:
    """The package a component's purl names; None for an unsupported purl type.

    ``source`` (the file) and ``ref`` (bom-ref/SPDXID) name the component in errors and
    become ``location`` (``<file>#<ref>``).
    """
    try:
        ecosystem, name, version = _purl_parts(purl)
    except UnknownEcosystem:
        return None
    except InvalidPurl as exc:
        raise InventoryFormatError(f"{source}: component {ref!r}: {exc}") from exc
    source_name: str | None = None
    source_version: str | None = None
    if _is_distro(ecosystem):
        source_name, source_version = name, version
        qualifiers: dict[str, str] = dict(PackageURL.from_string(purl).qualifiers or {})
        upstream = qualifiers.get("upstream")
        if upstream:
            if ecosystem.startswith(("Debian", "Ubuntu", "Alpine")):
                up_name, _, up_version = upstream.partition("@")
                source_name, source_version = up_name, up_version or version
            else:
                try:
                    split = split_source_rpm(upstream)
                except ValueError as exc:
                    raise InventoryFormatError(
                        f"{source}: component {ref!r}: purl qualifier 'upstream': {exc}"
                    ) from exc
                if split is not None:
                    source_name = split[0]
    return InstalledPackage(
        ecosystem=ecosystem,
        name=name,
        version=version,
        source_name=source_name,
        source_version=source_version,
        purl=purl,
        location=f"{source}#{ref}",
    )


@functools.lru_cache(maxsize=65_536)
def _purl_parts(purl: str) -> tuple[str, str, str]:
    """:func:`purl_to_package`, remembered: a fleet's SBOMs repeat the same purls (parsing one
    costs ~50 us). Errors are not remembered; they are raised again each time."""
    return purl_to_package(purl)


@functools.lru_cache(maxsize=1_024)
def _is_distro(ecosystem: str) -> bool:
    return Ecosystem.parse(ecosystem).is_distro


def read_sbom(path: Path) -> SbomDocument:
    """Read a CycloneDX or SPDX JSON SBOM, whichever ``path`` holds."""
    from patchwarden.inventory import cyclonedx, spdx

    doc = read_json(path, "SBOM")
    if doc.get("bomFormat") == "CycloneDX":
        return cyclonedx.parse_cyclonedx(doc, source=str(path))
    if "spdxVersion" in doc:
        return spdx.parse_spdx(doc, source=str(path))
    raise InventoryFormatError(
        f"{path}: not a CycloneDX (bomFormat) or SPDX (spdxVersion) JSON document"
    )


def load_sbom(path: Path) -> tuple[str | None, list[InstalledPackage]]:
    """``(subject name, packages)`` of the CycloneDX or SPDX JSON SBOM at ``path``."""
    document = read_sbom(path)
    return document.subject, list(document.packages)
