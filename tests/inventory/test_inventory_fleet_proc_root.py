"""A fleet ``root:`` under ``/proc/PID/root`` reads that process's filesystem, not ours.

This is how a running container's root is read from the machine it runs on. The magic link
``/proc/PID/root`` names ``/`` when the process sits in another mount namespace, so a path
made canonical with ``Path.resolve()`` silently pointed at the scanning machine's own folder
(here: an empty one). The test mounts a tmpfs with a Debian root in a private mount
namespace (``unshare --mount``) that only a sleeping process holds.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.ssh_fixtures import need_root

from patchwarden.inventory import collect_fleet_asset
from patchwarden.inventory.fleet import load_fleet

DEBIAN_ROOT = Path(__file__).resolve().parents[1] / "data" / "inventory" / "debian12-root"


@pytest.fixture
def hidden_root(tmp_path: Path) -> Iterator[Path]:
    """``/proc/PID/root/<tmp>/mnt``: a Debian root mounted only in another mount namespace."""
    need_root()
    mnt = tmp_path / "mnt"
    mnt.mkdir()  # stays empty in our namespace
    script = (
        f"mount -t tmpfs pw {mnt} && cp -a {DEBIAN_ROOT}/. {mnt}/ && echo ready && exec sleep 60"
    )
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield Path(f"/proc/{proc.pid}/root") / mnt.relative_to("/")
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_root_under_proc_pid_root_is_read_in_that_namespace(
    hidden_root: Path, tmp_path: Path
) -> None:
    assert not any((tmp_path / "mnt").iterdir())
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"assets:\n  - name: ctr\n    inventory:\n      root: {hidden_root}\n")
    (fa,) = load_fleet(fleet).assets
    assert fa.sources.root == hidden_root
    got = collect_fleet_asset(fa)
    fleet.write_text(f"assets:\n  - name: ctr\n    inventory:\n      root: {DEBIAN_ROOT}\n")
    want = collect_fleet_asset(load_fleet(fleet).assets[0])
    assert got.packages
    assert {(p.name, p.version) for p in got.packages} == {
        (p.name, p.version) for p in want.packages
    }
    assert all(str(p.location).startswith(str(hidden_root)) for p in got.packages)
    assert got.distro == want.distro == "Debian:12"
