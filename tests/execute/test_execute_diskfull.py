"""Disk full during apply, on a real full file system (a 4 MiB tmpfs; needs root, as CI is).

The venv lives on the tmpfs with urllib3 1.24.1; the rest of the tmpfs is filled, then the
local executor upgrades to 1.24.2: pip hits ENOSPC, the outcome names ``disk_full``, and the
snapshot's version is what is installed afterwards.
"""

from __future__ import annotations

import asyncio
import ensurepip
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.pw_testkit import WHEEL_CACHE, pypi_wheel

from patchwarden.execute import Change, Host, LocalExecutor, PackageManager, Pin, Reason
from patchwarden.execute.interface import Failed, RolledBack
from patchwarden.inventory.python import read_site_packages
from patchwarden.model import AssetId

CACHE = WHEEL_CACHE


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted at ``tmp_path/fs`` (unmounted at the end)."""
    if (
        subprocess.run(["id", "-u"], capture_output=True, text=True, check=True).stdout.strip()
        != "0"
    ):
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.slow
def test_disk_full_during_apply(tiny_fs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)  # the venv's pip.conf says where
    for version in ("1.24.1", "1.24.2"):
        pypi_wheel("urllib3", version)  # into CACHE, once per machine
    env = tiny_fs / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    site = next((env / "lib").glob("python3*/site-packages"))
    (bundled,) = Path(ensurepip.__file__).parent.glob("_bundled/pip-*.whl")
    (site / "pip-from-wheel.pth").write_text(f"{bundled}\n")
    (env / "pip.conf").write_text(f"[global]\nno-index = true\nfind-links = {CACHE}\n")
    python = env / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-index", "--find-links",
         str(CACHE), "--no-compile", "urllib3==1.24.1"],
        check=True,
    )  # fmt: skip
    with (tiny_fs / "filler").open("wb", buffering=0) as fh:  # fill it to the last block
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    host = Host(name=AssetId("full"), python=str(python))
    change = Change(
        manager=PackageManager.PIP,
        ecosystem="PyPI",
        targets=(Pin(name="urllib3", version="1.24.2"),),
    )

    async def go() -> object:
        async with LocalExecutor(restart_check=False) as ex:
            return await ex.apply(host, [change])

    outcome = asyncio.run(go())
    assert isinstance(outcome, RolledBack | Failed), outcome
    assert outcome.reason is Reason.DISK_FULL, outcome.message
    assert {p.name: p.version for p in read_site_packages(site)}["urllib3"] == "1.24.1"
