"""CycloneDX and SPDX JSON SBOMs, auto-detected by load_sbom."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from patchwarden.errors import InventoryFormatError
from patchwarden.inventory.cyclonedx import CycloneDxCollector
from patchwarden.inventory.sbom import load_sbom, read_sbom
from patchwarden.inventory.spdx import SpdxCollector

SBOM = Path(__file__).resolve().parents[1] / "data" / "inventory" / "sbom"


def test_cyclonedx() -> None:
    doc = read_sbom(SBOM / "app.cdx.json")
    assert doc.format == "cyclonedx"
    assert doc.subject == "registry.example.com/orders"
    got = {(p.ecosystem, p.name, p.version, p.source_name) for p in doc.packages}
    assert got == {
        ("Debian:12", "libssl3", "3.0.11-1~deb12u2", "openssl"),
        ("Debian:12", "libc6", "2.36-9+deb12u4", "glibc"),
        ("PyPI", "jinja2", "2.10", None),
        ("Maven", "org.apache.logging.log4j:log4j-core", "2.14.1", None),  # nested
        ("npm", "@babel/core", "7.23.2", None),  # nested
    }
    # No purl (log4j-bundle, the file) or an unsupported type (pkg:generic): skipped, counted.
    assert doc.skipped == ("log4j-bundle", "file-entrypoint", "vendored-zlib")
    libc = next(p for p in doc.packages if p.name == "libc6")
    assert libc.location == f"{SBOM / 'app.cdx.json'}#libc6"
    assert libc.source_version == "2.36-9+deb12u4"
    assert len(CycloneDxCollector().collect(SBOM / "app.cdx.json")) == 5


def test_spdx() -> None:
    subject, pkgs = load_sbom(SBOM / "app.spdx.json")
    assert subject == "orders-service"
    assert {(p.ecosystem, p.name, p.version, p.source_name) for p in pkgs} == {
        ("PyPI", "urllib3", "1.24.1", None),
        ("Alpine:v3.19", "libcrypto3", "3.1.4-r5", "openssl"),
        ("Go", "golang.org/x/net", "v0.17.0", None),
    }
    assert read_sbom(SBOM / "app.spdx.json").skipped == ("SPDXRef-Package-orders",)
    assert len(SpdxCollector().collect(SBOM / "app.spdx.json")) == 3


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "bom.json"
    path.write_text(json.dumps(doc))
    return path


def _cdx() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SBOM / "app.cdx.json").read_text())
    return doc


def test_wrong_spec_version(tmp_path: Path) -> None:
    doc = _cdx() | {"specVersion": "1.2"}
    with pytest.raises(InventoryFormatError, match=r"bom.json: field 'specVersion' is '1.2'"):
        load_sbom(_write(tmp_path, doc))


def test_bad_purl_names_component(tmp_path: Path) -> None:
    doc = _cdx()
    doc["components"][3]["components"][1]["purl"] = "npm:@babel/core"
    with pytest.raises(
        InventoryFormatError, match=r"bom.json: component 'babel-core': invalid purl"
    ):
        load_sbom(_write(tmp_path, doc))


def test_spdx_bad_purl_names_spdxid(tmp_path: Path) -> None:
    doc = json.loads((SBOM / "app.spdx.json").read_text())
    doc["packages"][1]["externalRefs"][0]["referenceLocator"] = "pkg:pypi/urllib3"
    with pytest.raises(
        InventoryFormatError,
        match=r"component 'SPDXRef-Package-pypi-urllib3': purl 'pkg:pypi/urllib3' has no version",
    ):
        load_sbom(_write(tmp_path, doc))


def test_spdx_wrong_version(tmp_path: Path) -> None:
    doc = json.loads((SBOM / "app.spdx.json").read_text()) | {"spdxVersion": "SPDX-3.0"}
    with pytest.raises(InventoryFormatError, match=r"field 'spdxVersion' is 'SPDX-3.0'"):
        load_sbom(_write(tmp_path, doc))


def test_not_json_and_not_an_sbom(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_text("<bom/>")
    with pytest.raises(InventoryFormatError, match=r"bom.json: cannot read SBOM JSON"):
        load_sbom(path)
    with pytest.raises(InventoryFormatError, match=r"not a CycloneDX .* or SPDX"):
        load_sbom(_write(tmp_path, {"hello": 1}))
