"""Patched on disk is not patched in memory: what must restart, and whether to reboot.

The needrestart/checkrestart method: a process that still maps a file that was deleted (dpkg and
pip replace files by writing a new one and renaming it over the old, which unlinks the old
inode; ``/proc/PID/maps`` then shows the path with `` (deleted)``) or replaced (the path now
names another inode than the one mapped) runs old code. Its systemd unit, from
``/proc/PID/cgroup``, is what to restart. Pseudo files (``/memfd:``, ``/dev/``, SysV shared
memory) are not code and are ignored, as needrestart does.

The kernel: the running release (``/proc/sys/kernel/osrelease``, the same as ``uname -r``) older
than the newest ``/boot/vmlinuz-*`` (dpkg version order, as needrestart compares) means a reboot
is needed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from patchwarden.execute.steps import Step, StepKind
from patchwarden.versions import scheme_for

IGNORED_PREFIXES = ("/memfd:", "/dev/", "/SYSV", "/drm", "/[", "/proc/", "/sys/")
"""Mapped "files" that are not code on disk."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StaleProcess:
    """A process that maps files which changed on disk since it mapped them."""

    pid: int
    """Process id."""
    command: str
    """``/proc/PID/comm``."""
    unit: str | None
    """Its systemd service (``ssh.service``) when it runs in one."""
    files: tuple[str, ...]
    """The deleted or replaced files it maps."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartReport:
    """What still runs old code after a change."""

    processes: tuple[StaleProcess, ...] = ()
    """Processes to restart."""
    running_kernel: str | None = None
    """``uname -r``."""
    newest_kernel: str | None = None
    """The newest installed kernel release (None: none found under /boot)."""

    @property
    def reboot_required(self) -> bool:
        """True when a newer kernel than the running one is installed."""
        return newer_kernel(self.running_kernel, self.newest_kernel)

    @property
    def units(self) -> tuple[str, ...]:
        """The systemd units to restart, sorted."""
        return tuple(sorted({p.unit for p in self.processes if p.unit}))

    @property
    def pending(self) -> bool:
        """True while any fixed code is not yet the code that runs."""
        return bool(self.processes) or self.reboot_required


def newer_kernel(running: str | None, newest: str | None) -> bool:
    """True when ``newest`` sorts after ``running`` (dpkg order, as needrestart compares).

    >>> newer_kernel("6.1.0-18-amd64", "6.1.0-21-amd64")
    True
    >>> newer_kernel("6.1.0-21-amd64", "6.1.0-21-amd64")
    False
    >>> newer_kernel("6.1.0-21-amd64", None)
    False
    """
    if not running or not newest:
        return False
    return scheme_for("Debian").compare(newest, running) > 0


def newest_kernel(boot: Path = Path("/boot")) -> str | None:
    """The newest release among ``boot/vmlinuz-*`` (None when there is none)."""
    releases = [p.name.removeprefix("vmlinuz-") for p in boot.glob("vmlinuz-*")]
    scheme = scheme_for("Debian")
    valid = [r for r in releases if scheme.is_valid(r)]
    if not valid:
        return None
    best = valid[0]
    for release in valid[1:]:
        if scheme.compare(release, best) > 0:
            best = release
    return best


def running_kernel(proc: Path = Path("/proc")) -> str:
    """The running kernel's release (``/proc/sys/kernel/osrelease``)."""
    return (proc / "sys" / "kernel" / "osrelease").read_text(encoding="ascii").strip()


_MAPS_LINE = re.compile(
    r"^[0-9a-f]+-[0-9a-f]+ \S+ [0-9a-f]+ (?P<dev>[0-9a-f]+:[0-9a-f]+) (?P<inode>\d+)\s+(?P<path>/.*)$"  # noqa: E501
)


def stale_maps(maps: str, stat: bool = True) -> list[str]:
    """The deleted (and, with ``stat``, replaced) code files in a ``/proc/PID/maps`` text.

    >>> stale_maps("7f00-7f10 r-xp 00000000 fd:01 42 /usr/lib/libssl.so.3 (deleted)\\n"
    ...            "7f10-7f20 rw-s 00000000 00:01 7 /memfd:x (deleted)\\n", stat=False)
    ['/usr/lib/libssl.so.3']
    """
    found: dict[str, None] = {}
    for line in maps.splitlines():
        m = _MAPS_LINE.match(line)
        if m is None:
            continue
        path, inode = m["path"], int(m["inode"])
        if path.startswith(IGNORED_PREFIXES) or inode == 0:
            continue
        if path.endswith(" (deleted)"):
            found[path.removesuffix(" (deleted)")] = None
            continue
        if stat:
            try:
                now = os.stat(path).st_ino
            except OSError:
                found[path] = None
                continue
            if now != inode:
                found[path] = None
    return list(found)


def unit_of(cgroup: str) -> str | None:
    """The systemd service of a ``/proc/PID/cgroup`` text.

    >>> unit_of("0::/system.slice/ssh.service\\n")
    'ssh.service'
    >>> unit_of("0::/user.slice/user-0.slice/session-3.scope\\n") is None
    True
    """
    for line in cgroup.splitlines():
        path = line.split(":", 2)[-1]
        for part in reversed(path.split("/")):
            if part.endswith(".service"):
                return part
    return None


def scan_processes(
    proc: Path = Path("/proc"), *, pids: Iterable[int] | None = None
) -> list[StaleProcess]:
    """Every process under ``proc`` (or only ``pids``) that maps deleted or replaced files."""
    if pids is None:
        pids = sorted(int(p.name) for p in proc.iterdir() if p.name.isdigit())
    found: list[StaleProcess] = []
    for pid in pids:
        base = proc / str(pid)
        try:
            maps = (base / "maps").read_text(encoding="utf-8", errors="replace")
            comm = (base / "comm").read_text(encoding="utf-8", errors="replace").strip()
            cgroup = (base / "cgroup").read_text(encoding="utf-8", errors="replace")
        except OSError:  # gone, or a kernel thread we may not read
            continue
        files = stale_maps(maps)
        if files:
            found.append(
                StaleProcess(pid=pid, command=comm, unit=unit_of(cgroup), files=tuple(files))
            )
    return found


def local_report(proc: Path = Path("/proc"), boot: Path = Path("/boot")) -> RestartReport:
    """The restart report of the machine patchwarden runs on."""
    return RestartReport(
        processes=tuple(scan_processes(proc)),
        running_kernel=running_kernel(proc),
        newest_kernel=newest_kernel(boot),
    )


RESTART_SCAN_SCRIPT = r"""
echo "kernel $(cat /proc/sys/kernel/osrelease)"
for k in /boot/vmlinuz-*; do [ -e "$k" ] && echo "installed ${k#/boot/vmlinuz-}"; done
last=
grep -H ' (deleted)$' /proc/[0-9]*/maps 2>/dev/null | while IFS= read -r line; do
  f=${line%%:*}; p=${f#/proc/}; p=${p%/maps}
  if [ "$p" != "$last" ]; then
    last=$p
    echo "pid $p $(cat /proc/$p/comm 2>/dev/null)"
    echo "cgroup $(grep -m1 '' /proc/$p/cgroup 2>/dev/null)"
  fi
  echo "map ${line#*:}"
done
true
"""
"""Host-side scan in POSIX sh (a minimal Debian root has no python or perl): kernel releases
and the deleted mappings of every process (replaced-but-not-deleted files need ``stat`` and are
found by the local scan only; package managers always unlink, so this covers upgrades)."""


def restart_scan_step() -> Step:
    """The host-side restart scan (root sees every process; non-root sees its own)."""
    return Step(
        kind=StepKind.RESTART_CHECK,
        argv=("sh", "-c", RESTART_SCAN_SCRIPT),
        become=True,
        description="restart check: processes mapping deleted files, running vs newest kernel",
    )


def parse_restart_scan(text: str) -> RestartReport:
    """Read the output of :data:`RESTART_SCAN_SCRIPT`.

    >>> r = parse_restart_scan("kernel 6.1.0-18-amd64\\ninstalled 6.1.0-21-amd64\\n"
    ...     "pid 7 sshd\\ncgroup 0::/system.slice/ssh.service\\n"
    ...     "map 7f00-7f10 r-xp 00000000 fd:01 42 /usr/lib/x/libssl.so.3 (deleted)\\n")
    >>> r.reboot_required, r.units, r.processes[0].files
    (True, ('ssh.service',), ('/usr/lib/x/libssl.so.3',))
    """
    running: str | None = None
    installed: list[str] = []
    processes: list[StaleProcess] = []
    current: dict[str, object] | None = None
    maps: list[str] = []

    def flush() -> None:
        if current is not None:
            files = stale_maps("\n".join(maps), stat=False)
            if files:
                processes.append(
                    StaleProcess(
                        pid=int(str(current["pid"])),
                        command=str(current["comm"]),
                        unit=current.get("unit") if isinstance(current.get("unit"), str) else None,  # type: ignore[arg-type]
                        files=tuple(files),
                    )
                )

    for line in text.splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "kernel":
            running = rest.strip()
        elif tag == "installed":
            installed.append(rest.strip())
        elif tag == "pid":
            flush()
            pid, _, comm = rest.partition(" ")
            current, maps = {"pid": pid, "comm": comm.strip()}, []
        elif tag == "cgroup" and current is not None:
            current["unit"] = unit_of(rest)
        elif tag == "map":
            maps.append(rest)
    flush()
    scheme = scheme_for("Debian")
    valid = [k for k in installed if scheme.is_valid(k)]
    newest = None
    for k in valid:
        if newest is None or scheme.compare(k, newest) > 0:
            newest = k
    return RestartReport(processes=tuple(processes), running_kernel=running, newest_kernel=newest)
