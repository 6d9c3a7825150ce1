"""SPDX JSON SBOMs, versions 2.2 and 2.3.

SPDX 2.3 specification, clause 7 ("Package information") and annex F ("External
repository identifiers"): ``packages[]`` each have an ``SPDXID``, ``name``, ``versionInfo``
and ``externalRefs[]``; a reference with ``referenceType`` ``purl`` (category
``PACKAGE-MANAGER``; ``PACKAGE_MANAGER`` in 2.2 documents) names the package. The subject
is the package the document ``DESCRIBES`` (``documentDescribes`` or a ``DESCRIBES``
relationship from ``SPDXRef-DOCUMENT``), else the document ``name``. Unlike CycloneDX's
``metadata.component``, a described package is an ordinary package too: it is listed when
it has a purl.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from patchwarden.errors import InventoryFormatError
from patchwarden.inventory.interface import Collector
from patchwarden.inventory.sbom import SbomDocument, package_from_purl, read_json
from patchwarden.model import InstalledPackage

SPDX_VERSIONS = ("SPDX-2.2", "SPDX-2.3")
"""SPDX versions this reader accepts."""


def _described(doc: dict[str, Any]) -> list[str]:
    ids = [d for d in doc.get("documentDescribes", []) if isinstance(d, str)]
    for rel in doc.get("relationships", []) or []:
        if (
            isinstance(rel, dict)
            and rel.get("relationshipType") == "DESCRIBES"
            and rel.get("spdxElementId") == doc.get("SPDXID", "SPDXRef-DOCUMENT")
        ):
            ids.append(str(rel.get("relatedSpdxElement")))
    return ids


def parse_spdx(doc: dict[str, Any], *, source: str) -> SbomDocument:
    """Read a parsed SPDX JSON document (``source`` names the file in errors)."""
    version = doc.get("spdxVersion")
    if version not in SPDX_VERSIONS:
        raise InventoryFormatError(
            f"{source}: field 'spdxVersion' is {version!r}, expected one of "
            f"{', '.join(SPDX_VERSIONS)}"
        )
    raw_packages = doc.get("packages", [])
    if not isinstance(raw_packages, list):
        raise InventoryFormatError(f"{source}: field 'packages' is not a list")
    names: dict[str, str] = {}
    packages: list[InstalledPackage] = []
    skipped: list[str] = []
    for i, pkg in enumerate(raw_packages):
        if not isinstance(pkg, dict):
            raise InventoryFormatError(f"{source}: field 'packages[{i}]' is not an object")
        ref = pkg.get("SPDXID")
        if not isinstance(ref, str) or not ref:
            raise InventoryFormatError(f"{source}: field 'packages[{i}].SPDXID' is missing")
        if isinstance(pkg.get("name"), str):
            names[ref] = pkg["name"]
        refs = pkg.get("externalRefs", [])
        if not isinstance(refs, list):
            raise InventoryFormatError(
                f"{source}: package {ref!r}: field 'externalRefs' is not a list"
            )
        purls = [
            r.get("referenceLocator")
            for r in refs
            if isinstance(r, dict) and r.get("referenceType") == "purl"
        ]
        if not purls:
            skipped.append(ref)
            continue
        purl = purls[0]
        if not isinstance(purl, str):
            raise InventoryFormatError(
                f"{source}: package {ref!r}: field 'externalRefs.referenceLocator' is not a string"
            )
        package = package_from_purl(purl, source=source, ref=ref)
        if package is None:
            skipped.append(ref)
        else:
            packages.append(package)
    subject = next((names[d] for d in _described(doc) if d in names), None)
    if subject is None and isinstance(doc.get("name"), str):
        subject = doc["name"]
    return SbomDocument(
        format="spdx", subject=subject, packages=tuple(packages), skipped=tuple(skipped)
    )


class SpdxCollector(Collector):
    """Reads an SPDX JSON SBOM (see module doc)."""

    name = "spdx"

    def collect(self, path: Path, *, distro: str | None = None) -> list[InstalledPackage]:
        """Packages named by purl in the SBOM at ``path`` (the purls carry their distro)."""
        return list(parse_spdx(read_json(path, "SPDX"), source=str(path)).packages)
