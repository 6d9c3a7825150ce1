"""Restart detection on real processes and the real kernel files."""

from __future__ import annotations

import ctypes.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchwarden.execute.restart import (
    RESTART_SCAN_SCRIPT,
    local_report,
    newest_kernel,
    parse_restart_scan,
    running_kernel,
    scan_processes,
)


def _library() -> Path:
    name = ctypes.util.find_library("z")
    assert name, "zlib is part of every Debian system"
    for folder in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"):
        if (Path(folder) / name).exists():
            return Path(folder) / name
    pytest.fail(f"cannot find {name}")


@pytest.fixture
def mapped(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A python process that has loaded a copy of libz from ``tmp_path``."""
    lib = tmp_path / "libpwtest.so.1"
    shutil.copy(_library(), lib)
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import ctypes,sys,time; ctypes.CDLL({str(lib)!r}); "
         "print('ready', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == b"ready"
        yield proc, lib
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_fresh_process_needs_nothing(mapped: tuple[subprocess.Popen[bytes], Path]) -> None:
    proc, _ = mapped
    assert scan_processes(pids=[proc.pid]) == []


def test_replaced_library_is_detected(mapped: tuple[subprocess.Popen[bytes], Path]) -> None:
    """As dpkg does: write the new file beside it, rename it over the old one."""
    proc, lib = mapped
    new = lib.with_suffix(".new")
    shutil.copy(_library(), new)
    os.replace(new, lib)
    (found,) = scan_processes(pids=[proc.pid])
    assert found.pid == proc.pid
    assert str(lib) in found.files
    # the host-side shell scan sees the same process through "(deleted)"
    out = subprocess.run(
        ["sh", "-c", RESTART_SCAN_SCRIPT], capture_output=True, text=True, check=True
    )
    report = parse_restart_scan(out.stdout)
    assert any(p.pid == proc.pid and str(lib) in p.files for p in report.processes)
    assert report.pending


def test_deleted_library_is_detected(mapped: tuple[subprocess.Popen[bytes], Path]) -> None:
    proc, lib = mapped
    lib.unlink()
    (found,) = scan_processes(pids=[proc.pid])
    assert found.files == (str(lib),)


def test_kernel_on_this_machine() -> None:
    """The real /proc and /boot: reboot needed exactly when /boot has a newer kernel."""
    running = running_kernel()
    assert running == os.uname().release
    assert running in Path("/proc/version").read_text()
    report = local_report()
    newest = newest_kernel(Path("/boot"))
    assert report.newest_kernel == newest
    if newest is None:
        assert not report.reboot_required  # nothing installed under /boot (a container)


def test_kernel_newer_in_boot(tmp_path: Path) -> None:
    for release in ("6.1.0-18-amd64", "6.1.0-21-amd64", "6.1.0-9-amd64"):
        (tmp_path / f"vmlinuz-{release}").write_bytes(b"")
    assert newest_kernel(tmp_path) == "6.1.0-21-amd64"
