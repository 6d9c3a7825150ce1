"""rpm: a real rpm database built by the test (rpmbuild + rpm --initdb), and saved listings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from patchwarden.errors import InventoryFormatError
from patchwarden.inventory.rpm import RpmCollector

DATA = Path(__file__).resolve().parents[1] / "data" / "inventory"

SPEC = """\
Name: pw-tools
Version: 1.0.3
Release: 4.el9
Summary: patchwarden inventory test package
License: MIT
BuildArch: noarch
%description
Built by the patchwarden inventory tests; it has no files.
%package -n pw-libfoo
Epoch: 2
Summary: a subpackage, so that its source rpm differs from its name
%description -n pw-libfoo
Subpackage of pw-tools.
%files
%files -n pw-libfoo
"""


@pytest.fixture(scope="module")
def rpm_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A filesystem root whose rpm database has two packages installed by the real rpm."""
    rpm, rpmbuild = shutil.which("rpm"), shutil.which("rpmbuild")
    assert rpm is not None, "rpm is installed by scripts/system-deps.sh (make test)"
    assert rpmbuild is not None, "rpmbuild ships with Debian's rpm package"
    top = tmp_path_factory.mktemp("rpmbuild")
    spec = top / "pw.spec"
    spec.write_text(SPEC)
    subprocess.run(
        [rpmbuild, "--define", f"_topdir {top}", "-bb", str(spec)], check=True, capture_output=True
    )
    built = sorted((top / "RPMS" / "noarch").glob("*.rpm"))
    assert len(built) == 2
    root = tmp_path_factory.mktemp("rocky-root")
    base = [rpm, "--root", str(root), "--dbpath", "/var/lib/rpm"]
    subprocess.run([*base, "--initdb"], check=True, capture_output=True)
    subprocess.run(
        [*base, "-i", "--nodeps", "--justdb", *map(str, built)], check=True, capture_output=True
    )
    return root


@pytest.mark.reference
def test_live_database(rpm_root: Path) -> None:
    collector = RpmCollector()
    [db] = collector.locate(rpm_root)
    assert db == rpm_root / "var" / "lib" / "rpm"
    pkgs = {p.name: p for p in collector.collect(db, distro="Rocky Linux:9")}
    assert set(pkgs) == {"pw-tools", "pw-libfoo"}
    tools, lib = pkgs["pw-tools"], pkgs["pw-libfoo"]
    assert (tools.ecosystem, tools.version, tools.source_name, tools.source_version) == (
        "Rocky Linux:9",
        "1.0.3-4.el9",
        "pw-tools",
        "1.0.3-4.el9",
    )
    # Epoch 2 shows in the version; the source rpm is the main package's.
    assert (lib.version, lib.source_name, lib.source_version) == (
        "2:1.0.3-4.el9",
        "pw-tools",
        "2:1.0.3-4.el9",
    )
    assert lib.purl == ("pkg:rpm/rocky/pw-libfoo@1.0.3-4.el9?arch=noarch&distro=rocky-9&epoch=2")


def test_locate_nothing(tmp_path: Path) -> None:
    (tmp_path / "var" / "lib" / "rpm").mkdir(parents=True)  # empty: no database
    assert RpmCollector().locate(tmp_path) == []


def test_saved_listing() -> None:
    pkgs = {p.name: p for p in RpmCollector().collect(DATA / "rocky9-rpm-qa.tsv")}
    assert len(pkgs) == 9
    libs = pkgs["openssl-libs"]
    assert (libs.ecosystem, libs.version, libs.source_name, libs.source_version) == (
        "Red Hat",
        "1:3.0.7-24.el9",
        "openssl",
        "1:3.0.7-24.el9",
    )
    assert pkgs["python3-libs"].source_name == "python3.9"
    assert pkgs["glibc-common"].source_name == "glibc"
    # gpg-pubkey has no source rpm: it is its own source.
    assert pkgs["gpg-pubkey"].source_name == "gpg-pubkey"
    assert pkgs["gpg-pubkey"].purl == "pkg:rpm/redhat/gpg-pubkey@350d275d-6279464b"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("bash\t0\t5.1.8\t6.el9\tx86_64\n", r"x.tsv:1: expected 6 tab-separated columns"),
        (
            "bash\tx\t5.1.8\t6.el9\tx86_64\tbash-5.1.8-6.el9.src.rpm\n",
            r"package 'bash': field 'epoch'",
        ),
        ("bash\t0\t5.1.8\t6.el9\tx86_64\tnonsense.src.rpm\n", r"package 'bash': field 'sourcerpm'"),
    ],
)
def test_malformed_listing(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "x.tsv"
    path.write_text(line)
    with pytest.raises(InventoryFormatError, match=message):
        RpmCollector().collect(path)


@pytest.mark.reference
def test_unreadable_database(tmp_path: Path) -> None:
    db = tmp_path / "var" / "lib" / "rpm"
    db.mkdir(parents=True)
    (db / "rpmdb.sqlite").write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(InventoryFormatError, match=r"rpm could not read the database"):
        RpmCollector().collect(db)
