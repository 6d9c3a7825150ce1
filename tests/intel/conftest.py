"""Fixtures of the intel tests: the real openssl/libssl3 ``.deb`` files of bookworm-security."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

OPENSSL_FIXED = "3.0.22-1~deb12u2"
"""openssl/libssl3 in bookworm-security when the tests were written; its changelog names
the CVE ids the tests assert on."""
OPENSSL_OLD = "3.0.17-1~deb12u2"
"""The bookworm-updates version the Debian test hosts start from."""

CACHE = Path(os.environ.get("PATCHWARDEN_TEST_CACHE", Path.home() / ".cache/patchwarden-tests"))


def _missing(reason: str) -> None:
    """Fail under CI (the prerequisite must be there), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def deb_name(package: str, version: str, arch: str) -> str:
    """The file name ``apt-get download`` gives a package (``:`` of an epoch is ``%3a``)."""
    return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


def download_debs(specs: list[tuple[str, str]], dest: Path) -> dict[str, Path]:
    """``apt-get download`` each ``(package, version)`` into ``dest`` unless it is there.

    Downloads go to a temporary sibling folder first and are renamed into place, so two
    concurrent test runs never see half a file.
    """
    dest.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    wanted: list[str] = []
    for package, version in specs:
        found = sorted(dest.glob(deb_name(package, version, "*")))
        if found:
            out[package] = found[0]
        else:
            wanted.append(f"{package}={version}")
    if wanted:
        if shutil.which("apt-get") is None:
            _missing("apt-get is needed to download the test packages")
        with tempfile.TemporaryDirectory(dir=dest, prefix=".download-") as tmp:
            done = subprocess.run(
                ["apt-get", "download", "-q", *wanted],
                cwd=tmp,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            if done.returncode != 0:
                _missing(f"apt-get download {' '.join(wanted)} failed: {done.stderr.strip()}")
            for item in Path(tmp).glob("*.deb"):
                item.rename(dest / item.name)
        for package, version in specs:
            out[package] = sorted(dest.glob(deb_name(package, version, "*")))[0]
    return out


@pytest.fixture(scope="session")
def openssl_fixed_debs() -> dict[str, Path]:
    """The real ``openssl`` and ``libssl3`` :data:`OPENSSL_FIXED` packages (cached)."""
    return download_debs([("openssl", OPENSSL_FIXED), ("libssl3", OPENSSL_FIXED)], CACHE / "debs")
