"""apk installed db: a hand-written Alpine 3.19 database in the real format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from patchwarden.errors import InventoryFormatError
from patchwarden.inventory.apk import ApkCollector

DATA = Path(__file__).resolve().parents[1] / "data" / "inventory"
ROOT = DATA / "alpine319-root"
SECDB = Path(__file__).resolve().parents[3] / "shared" / "data" / "alpine" / "secdb" / "v3.19"


def test_installed_db() -> None:
    collector = ApkCollector()
    [db] = collector.locate(ROOT)
    pkgs = {p.name: p for p in collector.collect(db, distro="Alpine:v3.19")}
    assert len(pkgs) == 11
    crypto = pkgs["libcrypto3"]
    assert (crypto.ecosystem, crypto.version, crypto.source_name, crypto.source_version) == (
        "Alpine:v3.19",
        "3.1.4-r5",
        "openssl",
        "3.1.4-r5",
    )
    assert crypto.purl == "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=3.19"
    assert pkgs["ssl_client"].source_name == "busybox"
    assert pkgs["scanelf"].source_name == "pax-utils"


def test_origins_are_secdb_keys() -> None:
    """Alpine secdb (real, shared/data) is keyed by origin: our source names must be its keys."""
    secdb = json.loads((SECDB / "main.json").read_text())
    keys = {entry["pkg"]["name"] for entry in secdb["packages"]}
    origins = {p.source_name for p in ApkCollector().collect(ROOT / "lib/apk/db/installed")}
    assert {"openssl", "busybox", "musl", "zlib"} <= origins & keys


def test_missing_origin_defaults_to_name(tmp_path: Path) -> None:
    path = tmp_path / "installed"
    path.write_text("P:zlib\nV:1.3.1-r0\nA:x86_64\n")
    [pkg] = ApkCollector().collect(path)
    assert (pkg.ecosystem, pkg.source_name) == ("Alpine", "zlib")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("P:zlib\nA:x86_64\n", r"installed:1: package 'zlib' has no 'V:'"),
        ("P:zlib\nV:1\n\nV:2\nA:x86_64\n", r"installed:4: package record has no 'P:'"),
        ("P:zlib\nversion 1\n", r"installed:2: expected 'K:value'"),
    ],
)
def test_malformed(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "installed"
    path.write_text(text)
    with pytest.raises(InventoryFormatError, match=message):
        ApkCollector().collect(path)
