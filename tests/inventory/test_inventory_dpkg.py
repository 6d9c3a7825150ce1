"""dpkg status and dpkg-query listings: real data from this Debian 12 machine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from patchwarden.errors import InventoryFormatError
from patchwarden.inventory.dpkg import DpkgCollector
from patchwarden.model import inventory_rows

DATA = Path(__file__).resolve().parents[1] / "data" / "inventory"
STATUS = DATA / "debian12-root" / "var" / "lib" / "dpkg" / "status"
LISTING = DATA / "dpkg-query-debian12.tsv"


def test_status_subset() -> None:
    pkgs = {p.name: p for p in DpkgCollector().collect(STATUS, distro="Debian:12")}
    assert len(pkgs) == 14
    libc = pkgs["libc6"]
    # 'Source: glibc' without a version: the source version is the binary version.
    assert (libc.ecosystem, libc.version, libc.source_name, libc.source_version) == (
        "Debian:12",
        "2.36-9+deb12u14",
        "glibc",
        "2.36-9+deb12u14",
    )
    assert libc.purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=bookworm"
    assert pkgs["libssl3"].source_name == "openssl"
    # No Source line: the package is its own source.
    assert (pkgs["openssl"].source_name, pkgs["openssl"].source_version) == (
        "openssl",
        "3.0.19-1~deb12u2",
    )
    # 'Source: bash (5.2.15-2)' for a binNMU '+b8' build.
    assert (pkgs["bash"].version, pkgs["bash"].source_version) == ("5.2.15-2+b8", "5.2.15-2")
    assert pkgs["bsdutils"].source_name == "util-linux"
    assert pkgs["bsdutils"].version == "1:2.38.1-5+deb12u3"
    assert pkgs["bsdutils"].source_version == "2.38.1-5+deb12u3"
    assert pkgs["tzdata"].purl is not None
    assert "arch=all" in pkgs["tzdata"].purl


def test_unknown_distro_is_plain_debian() -> None:
    pkgs = DpkgCollector().collect(STATUS)
    assert {p.ecosystem for p in pkgs} == {"Debian"}
    assert all("distro=" not in (p.purl or "") for p in pkgs)


def test_listing_agrees_with_status() -> None:
    from_listing = DpkgCollector().collect(LISTING, distro="Debian:12")
    from_status = DpkgCollector().collect(STATUS, distro="Debian:12")
    assert len(from_listing) == 14
    key = lambda p: (p.name, p.version, p.source_name, p.source_version)  # noqa: E731
    assert sorted(map(key, from_listing)) == sorted(map(key, from_status))


def test_not_installed_stanzas_are_skipped(tmp_path: Path) -> None:
    text = STATUS.read_text()
    text = text.replace(
        "Package: curl\nStatus: install ok installed",
        "Package: curl\nStatus: deinstall ok config-files",
    ).replace(
        "Package: zlib1g\nStatus: install ok installed",
        "Package: zlib1g\nStatus: hold ok installed",
    )
    path = tmp_path / "status"
    path.write_text(text)
    names = {p.name for p in DpkgCollector().collect(path)}
    assert "curl" not in names
    assert "zlib1g" in names
    assert len(names) == 13


def test_listing_with_status_column(tmp_path: Path) -> None:
    path = tmp_path / "list.tsv"
    path.write_text("curl\t7.88.1-10\tcurl\t7.88.1-10\tii \nfoo\t1.0\tfoo\t1.0\trc \n")
    assert [p.name for p in DpkgCollector().collect(path)] == ["curl"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Package: a\nStatus: install ok installed\n",
            r"status:1: package 'a': installed package has no 'Version'",
        ),
        (
            "Package: a\nStatus: install ok\nVersion: 1\n",
            r"status:1: package 'a': field 'Status' must have 3 words",
        ),
        (
            "Package: a\nStatus: install ok installed\nVersion: 1\n\nVersion: 2\n",
            r"status:5: stanza has no 'Package' field",
        ),
        ("Package: a\nVersion: 1\n", r"status:1: package 'a': field 'Status' is missing"),
        ("Package: a\nnot a field line\n", r"status:2: expected 'Field: value'"),
        (
            "Package: a\nStatus: install ok installed\nVersion: 1\nSource: x (1) (2)\n",
            r"status:1: package 'a': field 'Source' is not",
        ),
    ],
)
def test_malformed_status(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "status"
    path.write_text(text)
    with pytest.raises(InventoryFormatError, match=message):
        DpkgCollector().collect(path)
    with pytest.raises(InventoryFormatError, match=message):  # the fast path reports the same
        DpkgCollector().collect_rows(path)


def _variants(tmp_path: Path) -> list[Path]:
    """The real subset, plus the same text with CRLF ends, a duplicated package built for
    another architecture, blank-line runs, a not-installed stanza, and a listing."""
    text = STATUS.read_text()
    crlf = tmp_path / "crlf"
    crlf.write_bytes(text.replace("\n", "\r\n").encode())
    stanzas = text.strip("\n").split("\n\n")
    libc = next(s for s in stanzas if s.startswith("Package: libc6\n"))
    odd = tmp_path / "odd"
    odd.write_text(
        "\n\n\n".join(stanzas[:5])
        + "\n\n"
        + libc.replace("Architecture: amd64", "Architecture: i386")
        + "\n\n"
        + stanzas[6].replace("install ok installed", "deinstall ok config-files")
        + "\n\n\n\n"
        + "\n\n".join(stanzas[7:])
        + "\n\n"
    )
    return [STATUS, crlf, odd, LISTING]


def test_collect_rows_equals_the_rows_of_collect(tmp_path: Path) -> None:
    """The fast row path gives exactly inventory_rows(collect()), also from its memo."""
    collector = DpkgCollector()
    for path in _variants(tmp_path):
        for distro in ("Debian:12", None):
            expected = inventory_rows(collector.collect(path, distro=distro))
            assert expected
            assert collector.collect_rows(path, distro=distro) == expected, path
            assert collector.collect_rows(path, distro=distro) == expected, path  # memoised
    rows = collector.collect_rows(tmp_path / "odd", distro="Debian:12")
    (libc,) = [r for r in rows if "\tlibc6\t" in r[0]]
    assert libc[2] is not None
    assert "arch=i386" in libc[2]  # of duplicate stanzas the later one wins


def test_collect_rows_rejects_what_collect_rejects(tmp_path: Path) -> None:
    path = tmp_path / "status"
    path.write_bytes(STATUS.read_bytes().replace(b"Package: curl", b"Package: cur\xffl"))
    with pytest.raises(InventoryFormatError, match="cannot read dpkg database"):
        DpkgCollector().collect(path)
    with pytest.raises(InventoryFormatError, match="cannot read dpkg database"):
        DpkgCollector().collect_rows(path)
    with pytest.raises(InventoryFormatError, match="cannot read dpkg database"):
        DpkgCollector().collect_rows(tmp_path / "missing")


def test_malformed_listing(tmp_path: Path) -> None:
    path = tmp_path / "list.tsv"
    path.write_text("curl\t7.88.1-10\tcurl\t7.88.1-10\nbroken\tline\n")
    with pytest.raises(InventoryFormatError, match=r"list.tsv:2: expected 4 or 5 tab-separated"):
        DpkgCollector().collect(path)


@pytest.mark.reference
def test_whole_machine_status_matches_dpkg_query() -> None:
    """Differential: every installed package of this machine, parsed vs dpkg-query's view."""
    dpkg_query = shutil.which("dpkg-query")
    assert dpkg_query is not None, "dpkg-query is part of every Debian system"
    out = subprocess.run(
        [
            dpkg_query,
            "-W",
            "-f=${db:Status-Abbrev}\t${Package}\t${Version}\t${source:Package}\t${source:Version}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = set()
    for line in out.splitlines():
        status, name, version, src, src_version = line.split("\t")
        if status[:2] in {"ii", "hi"}:
            expected.add((name, version, src, src_version))
    machine = Path("/var/lib/dpkg/status")
    packages = DpkgCollector().collect(machine)
    ours = {(p.name, p.version, p.source_name, p.source_version) for p in packages}
    assert len(expected) > 100
    assert ours == expected
    assert DpkgCollector().collect_rows(machine) == inventory_rows(packages)
