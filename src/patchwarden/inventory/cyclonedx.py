"""CycloneDX JSON SBOMs, spec versions 1.4, 1.5 and 1.6.

CycloneDX JSON schema (``bom-1.6.schema.json``): ``bomFormat`` is ``"CycloneDX"``,
``specVersion`` the spec version, ``metadata.component`` the subject the BOM describes, and
``components[]`` the inventory; a component may nest ``components[]`` of its own (e.g. the
files of an image layer, the modules of a jar), which are read too. Each component's
``purl`` names the package (see :mod:`patchwarden.inventory.sbom` for components without
one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from patchwarden.errors import InventoryFormatError
from patchwarden.inventory.interface import Collector
from patchwarden.inventory.sbom import SbomDocument, package_from_purl, read_json
from patchwarden.model import InstalledPackage

SPEC_VERSIONS = ("1.4", "1.5", "1.6")
"""CycloneDX spec versions this reader accepts."""


def parse_cyclonedx(doc: dict[str, Any], *, source: str) -> SbomDocument:
    """Read a parsed CycloneDX JSON document (``source`` names the file in errors)."""
    if doc.get("bomFormat") != "CycloneDX":
        raise InventoryFormatError(
            f"{source}: field 'bomFormat' is {doc.get('bomFormat')!r}, expected 'CycloneDX'"
        )
    spec = doc.get("specVersion")
    if spec not in SPEC_VERSIONS:
        raise InventoryFormatError(
            f"{source}: field 'specVersion' is {spec!r}, expected one of {', '.join(SPEC_VERSIONS)}"
        )
    subject: str | None = None
    metadata = doc.get("metadata", {})
    if not isinstance(metadata, dict):
        raise InventoryFormatError(f"{source}: field 'metadata' is not an object")
    component = metadata.get("component")
    if component is not None:
        if not isinstance(component, dict) or not isinstance(component.get("name"), str):
            raise InventoryFormatError(f"{source}: field 'metadata.component.name' is missing")
        subject = component["name"]
    packages: list[InstalledPackage] = []
    skipped: list[str] = []
    _walk(doc.get("components", []), "components", source, packages, skipped)
    return SbomDocument(
        format="cyclonedx", subject=subject, packages=tuple(packages), skipped=tuple(skipped)
    )


def _walk(
    components: Any, where: str, source: str, packages: list[InstalledPackage], skipped: list[str]
) -> None:
    if not isinstance(components, list):
        raise InventoryFormatError(f"{source}: field {where!r} is not a list")
    for i, comp in enumerate(components):
        field = f"{where}[{i}]"
        if not isinstance(comp, dict):
            raise InventoryFormatError(f"{source}: field {field!r} is not an object")
        ref = comp.get("bom-ref") or comp.get("name") or field
        if not isinstance(ref, str):
            raise InventoryFormatError(f"{source}: field {field + '.bom-ref'!r} is not a string")
        purl = comp.get("purl")
        if purl is None:
            skipped.append(ref)
        elif not isinstance(purl, str):
            raise InventoryFormatError(f"{source}: component {ref!r}: field 'purl' is not a string")
        else:
            package = package_from_purl(purl, source=source, ref=ref)
            if package is None:
                skipped.append(ref)
            else:
                packages.append(package)
        if "components" in comp:
            _walk(comp["components"], f"{field}.components", source, packages, skipped)


class CycloneDxCollector(Collector):
    """Reads a CycloneDX JSON SBOM (see module doc)."""

    name = "cyclonedx"

    def collect(self, path: Path, *, distro: str | None = None) -> list[InstalledPackage]:
        """Packages named by purl in the SBOM at ``path`` (the purls carry their distro)."""
        return list(parse_cyclonedx(read_json(path, "CycloneDX"), source=str(path)).packages)
