"""os-release -> OSV ecosystem, on real os-release files and the documented variants."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchwarden.errors import InventoryFormatError
from patchwarden.inventory.osrelease import read_os_release

DATA = Path(__file__).resolve().parents[1] / "data" / "inventory"


def test_real_debian12_os_release() -> None:
    assert read_os_release(DATA / "debian12-root") == "Debian:12"


def test_alpine_version_is_major_minor_with_v() -> None:
    assert read_os_release(DATA / "alpine319-root") == "Alpine:v3.19"


def _root(tmp_path: Path, text: str, *, usr_lib: bool = False) -> Path:
    target = tmp_path / ("usr/lib/os-release" if usr_lib else "etc/os-release")
    target.parent.mkdir(parents=True)
    target.write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('ID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n', "Ubuntu:22.04"),
        ('ID="rhel"\nVERSION_ID="9.3"\n', "Red Hat:9"),
        ('ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\n', "Rocky Linux:9"),
        ('ID="almalinux"\nVERSION_ID="9.4"\n', "AlmaLinux:9"),
        # Debian testing carries no VERSION_ID, only the codename.
        ("ID=debian\nVERSION_CODENAME=trixie\n", "Debian:13"),
        ("ID=debian\nVERSION_CODENAME=sid\n", "Debian"),
        ("ID=gentoo\n", None),
    ],
)
def test_variants(tmp_path: Path, text: str, expected: str | None) -> None:
    assert read_os_release(_root(tmp_path, text)) == expected


def test_usr_lib_fallback(tmp_path: Path) -> None:
    assert (
        read_os_release(_root(tmp_path, "ID=debian\nVERSION_ID=11\n", usr_lib=True)) == "Debian:11"
    )


def test_absent_is_none(tmp_path: Path) -> None:
    assert read_os_release(tmp_path) is None


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    root = _root(tmp_path, "ID=debian\nthis is not a field\n")
    with pytest.raises(InventoryFormatError, match=r"etc/os-release:2: expected KEY=value"):
        read_os_release(root)


def test_absolute_symlink_stays_inside_root(tmp_path: Path) -> None:
    _root(tmp_path, "ID=alpine\nVERSION_ID=3.20.3\n", usr_lib=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "os-release").symlink_to("/usr/lib/os-release")
    assert read_os_release(tmp_path) == "Alpine:v3.20"
