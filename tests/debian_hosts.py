"""Real Debian test hosts: debootstrap'd bookworm roots reached over real SSH.

A pytest plugin (``pytest_plugins`` in tests/conftest.py). It offers:

* ``debian_image`` (session): a cached bookworm root with the *old* openssl/libssl3
  (:data:`OPENSSL_OLD`, bookworm-updates) installed and a local apt repository inside it;
* ``openssl_debs`` (session): the real ``.deb`` files of both openssl versions;
* ``debian_host`` (function): ``debian_host("h1")`` starts one test host and returns a
  :class:`DebianHost`; every host is stopped at the end of the test.

**Cache** (``~/.cache/patchwarden-tests``, or ``$PATCHWARDEN_TEST_CACHE``), built on first use
and reused by every later run:

* ``bookworm-minbase``: ``debootstrap --variant=minbase bookworm`` (about 70 s and 40 MB of
  downloads);
* ``debs``: ``apt-get download`` of openssl and libssl3 at :data:`OPENSSL_OLD` and
  :data:`OPENSSL_FIXED` (this machine's apt sources: bookworm-updates and bookworm-security);
* ``bookworm-openssl-<old>``: the minbase root plus ``/srv/pw-repo`` (the four .debs and a
  ``Packages`` index from ``dpkg-scanpackages --multiversion``), ``sources.list`` reduced to
  ``deb [trusted=yes] file:/srv/pw-repo ./`` (so apt on a test host uses no network),
  ``dpkg -i`` of the old openssl/libssl3 and ``apt-get update``; docs, man pages, locales and
  apt's download cache are removed (80 MB, 6,700 files).

Each tree is built in a temporary sibling folder and renamed into place, with a stamp file
(``.patchwarden-stamp``: the recipe, e.g. the debootstrap arguments) written before the
rename, so an interrupted build never leaves a half root and a changed recipe rebuilds. A file
lock serialises concurrent builders.

**A test host** is the image under an overlayfs (the image is the read-only lower layer; the
host's changes go to an upper folder in a temp dir), seen by the machine's own
``/usr/sbin/sshd`` with ``ChrootDirectory`` set to it: a private config, a free port on
127.0.0.1, a fresh ed25519 host key and client key, a known_hosts naming the host key. sshd
runs as PID 1 of its own PID and mount namespaces (``unshare --fork --pid --mount
--propagation private --kill-child``), where the overlay and a ``/proc`` of that PID
namespace are mounted; nothing is mounted in the machine's namespace. Stopping the host (or
the death of pytest, through ``PR_SET_PDEATHSIG``) kills ``unshare``, which kills sshd and with
it the namespace, its processes and its mounts. From outside, the host's filesystem is read at
``/proc/<unshare pid>/root/<mount point>`` (:attr:`DebianHost.root`), so the dpkg collector
reads the host's real ``/var/lib/dpkg/status``. A per-host copy with ``cp -a`` took 1.7 s
here; the overlay mount takes 0.03 s.

Prerequisites (root, debootstrap, dpkg-scanpackages, sshd, unshare, overlayfs) are installed
by scripts/system-deps.sh; a missing one fails under CI (``CI=true``) and skips elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.ssh_fixtures import SSHD, free_port, keygen, need_root

CACHE = Path(os.environ.get("PATCHWARDEN_TEST_CACHE", Path.home() / ".cache" / "patchwarden-tests"))
"""Where the roots and the downloaded .debs are kept between runs."""

MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
DEBOOTSTRAP_ARGS = ("--variant=minbase", SUITE)
"""``debootstrap ARGS TARGET MIRROR`` (the stamp records them with the mirror)."""

OPENSSL_OLD = "3.0.17-1~deb12u2"
"""The vulnerable openssl the test hosts start with (bookworm-updates)."""
OPENSSL_FIXED = "3.0.22-1~deb12u2"
"""The fixed openssl (bookworm-security); its .deb's changelog lists the CVEs it fixes."""
OPENSSL_BINARIES = ("openssl", "libssl3")
"""The binaries of source ``openssl`` the hosts have installed."""

IMAGE_RECIPE = 1
"""Bump when the image recipe below changes (the stamp then differs and the image rebuilds)."""

REPO = "/srv/pw-repo"
"""The local apt repository inside each root."""
RUN_DIR = Path("/run/patchwarden-tests")
"""Mount points of the hosts' roots (sshd's ChrootDirectory wants root-owned 0755 components,
which /tmp is not). Only empty folders exist here in the machine's own mount namespace."""

_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_STAMP = ".patchwarden-stamp"


def prerequisite_missing(reason: str) -> None:
    """Fail under CI, where every prerequisite must be there; skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _need_tools() -> None:
    need_root()
    missing = [
        tool
        for tool in (
            "debootstrap",
            "dpkg-scanpackages",
            "unshare",
            "setpriv",
            "chroot",
            "apt-get",
            "ssh",
        )
        if shutil.which(tool) is None
    ]
    if not SSHD.is_file():
        missing.append(str(SSHD))
    if missing:
        prerequisite_missing(
            f"missing {', '.join(missing)}: run scripts/system-deps.sh "
            "(installs debootstrap, dpkg-dev, openssh-server)"
        )
    if "overlay" not in Path("/proc/filesystems").read_text():
        subprocess.run(["modprobe", "overlay"], check=False, capture_output=True)
        if "overlay" not in Path("/proc/filesystems").read_text():
            prerequisite_missing("the kernel has no overlayfs (the test hosts are overlay mounts)")


def _run(argv: Sequence[str], *, what: str, cwd: Path | None = None) -> str:
    """Run a set-up command; fail the test with its output when it fails."""
    env = {**os.environ, "PATH": _PATH, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
    proc = subprocess.run(list(argv), check=False, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(
            f"{what} failed (exit {proc.returncode}): {shlex.join(argv)}\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def chroot_run(root: Path, argv: Sequence[str], *, what: str) -> str:
    """Run ``argv`` chrooted into ``root`` with a private /proc (nothing stays mounted)."""
    return _run(
        [
            "unshare", "--fork", "--pid", "--mount", "--propagation", "private",
            f"--mount-proc={root / 'proc'}", "chroot", str(root), *argv,
        ],
        what=what,
    )  # fmt: skip


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has left its namespaces and counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}


def cached_tree(dest: Path, stamp: str, build: Callable[[Path], None]) -> Path:
    """``dest`` built by ``build(tmp)`` unless it exists with the same ``stamp``.

    The tree is built in a sibling temp folder and renamed into place (the stamp is written
    last, before the rename), so an interrupted build never leaves a half tree at ``dest``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    stamp_file = dest / _STAMP
    with (dest.parent / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp_file.is_file() and stamp_file.read_text() == stamp:
            return dest
        for stale in dest.parent.glob(f".{dest.name}.*"):
            shutil.rmtree(stale, ignore_errors=True)  # an earlier, interrupted build
        tmp = dest.parent / f".{dest.name}.building-{os.getpid()}"
        tmp.mkdir()
        tmp.chmod(0o755)
        build(tmp)
        (tmp / _STAMP).write_text(stamp)
        if dest.exists():
            old = dest.parent / f".{dest.name}.old-{os.getpid()}"
            dest.rename(old)
            shutil.rmtree(old)
        tmp.rename(dest)
    return dest


def minbase_root() -> Path:
    """The cached ``debootstrap --variant=minbase bookworm`` root (built when missing)."""
    argv = ("debootstrap", *DEBOOTSTRAP_ARGS)

    def build(tmp: Path) -> None:
        _run([*argv, str(tmp), MIRROR], what="debootstrap")
        shutil.rmtree(tmp / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        (tmp / "var" / "cache" / "apt" / "archives" / "partial").mkdir(parents=True)

    stamp = shlex.join([*argv, "TARGET", MIRROR]) + "\n"
    return cached_tree(CACHE / f"{SUITE}-minbase", stamp, build)


def deb_name(package: str, version: str) -> str:
    """The file name ``apt-get download`` gives (epoch ``:`` as ``%3a``), arch amd64.

    >>> deb_name("openssl", "1:3.0-1")
    'openssl_1%3a3.0-1_amd64.deb'
    """
    return f"{package}_{version.replace(':', '%3a')}_amd64.deb"


def downloaded_debs(pins: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Path]:
    """``apt-get download`` each (package, version) once per machine (cached under debs/).

    Downloads land in a temporary sibling folder and are renamed into place, so a cached
    file is always whole (tests/intel shares this folder and does the same).
    """
    folder = CACHE / "debs"
    folder.mkdir(parents=True, exist_ok=True)
    want = {pin: folder / deb_name(*pin) for pin in pins}
    missing = [f"{p}={v}" for (p, v), path in want.items() if not path.is_file()]
    if missing:
        argv = ["apt-get", "download", "-q", *missing]
        with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
            Path(tmp).chmod(0o755)  # apt's _apt sandbox user writes there
            proc = subprocess.run(argv, check=False, cwd=tmp, capture_output=True, text=True)
            if proc.returncode != 0:  # the machine's package lists may be missing or old
                _run(["apt-get", "update", "-q"], what="apt-get update (for apt-get download)")
                _run(argv, what="apt-get download", cwd=Path(tmp))
            for deb in Path(tmp).glob("*.deb"):
                deb.rename(folder / deb.name)
    for path in want.values():
        if not path.is_file():
            pytest.fail(f"apt-get download did not leave {path}")
    return want


def _scan_packages(repo: Path) -> None:
    """(Re)write the flat repository's ``Packages`` index (every version of every .deb).

    The scan runs on a copy of the .debs: ``dpkg-scanpackages`` finds no package in a
    folder reached through ``/proc/PID/root`` (a running host's repository).
    """
    with tempfile.TemporaryDirectory(prefix="pw-repo-") as tmp:
        for deb in repo.glob("*.deb"):
            shutil.copy(deb, Path(tmp) / deb.name)
        text = _run(
            ["dpkg-scanpackages", "--multiversion", ".", "/dev/null"],
            what="dpkg-scanpackages",
            cwd=Path(tmp),
        )
    if "Package:" not in text:
        pytest.fail(f"dpkg-scanpackages found no package in {repo}")
    (repo / "Packages").write_text(text)


def _trim(root: Path) -> None:
    for sub in ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info"):
        folder = root / sub
        if folder.is_dir():
            for child in folder.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    for leftover in (root / "var" / "cache" / "apt").glob("*.bin"):
        leftover.unlink()
    for deb in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        deb.unlink()


@dataclass(frozen=True)
class DebianImage:
    """The cached host image and the .debs in its repository."""

    root: Path
    """The image (read-only: it is every host's lower overlay layer)."""
    debs: dict[tuple[str, str], Path]
    """(package, version) -> the cached .deb."""


def openssl_image() -> DebianImage:
    """Minbase + local repo with both openssl versions + the old one installed (cached)."""
    pins = [(p, v) for v in (OPENSSL_OLD, OPENSSL_FIXED) for p in OPENSSL_BINARIES]
    debs = downloaded_debs(pins)
    base = minbase_root()

    def build(tmp: Path) -> None:
        _run(["cp", "-a", f"{base}/.", str(tmp)], what="copy the minbase root")
        (tmp / _STAMP).unlink()
        repo = tmp / REPO.lstrip("/")
        repo.mkdir(parents=True)
        for path in debs.values():
            shutil.copy(path, repo / path.name)
        _scan_packages(repo)
        apt = tmp / "etc" / "apt"
        (apt / "sources.list").write_text(f"deb [trusted=yes] file:{REPO} ./\n")
        for extra in (apt / "sources.list.d").glob("*"):
            extra.unlink()
        (apt / "apt.conf.d" / "99patchwarden-tests").write_text(
            'Acquire::Languages "none";\nAPT::Install-Recommends "false";\n'
        )
        old = [f"{REPO}/{deb_name(p, OPENSSL_OLD)}" for p in OPENSSL_BINARIES]
        chroot_run(tmp, ["dpkg", "-i", *old], what="dpkg -i the old openssl")
        chroot_run(tmp, ["apt-get", "update", "-q"], what="apt-get update in the image")
        _trim(tmp)

    stamp = (
        f"recipe {IMAGE_RECIPE}\nbase {(base / _STAMP).read_text().strip()}\n"
        f"repo {' '.join(sorted(p.name for p in debs.values()))}\ninstalled {OPENSSL_OLD}\n"
    )
    return DebianImage(
        root=cached_tree(CACHE / f"{SUITE}-openssl-{OPENSSL_OLD}", stamp, build), debs=debs
    )


@dataclass(frozen=True)
class DebianHost:
    """A running test host (see the module docstring)."""

    name: str
    port: int
    client_key: Path
    known_hosts: Path
    root: Path
    """The host's filesystem as seen from the machine (valid while the host runs)."""
    log: Path
    """sshd's log."""

    def ssh(self, command: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on the host with the OpenSSH client (independent of patchwarden)."""
        argv = [
            "ssh", "-F", "/dev/null", "-i", str(self.client_key), "-p", str(self.port),
            "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "root@127.0.0.1", command,
        ]  # fmt: skip
        proc = subprocess.run(
            argv, check=False, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"{self.name}: {command!r} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
                f"\nsshd log: {self.log.read_text()[-2000:]}"
            )
        return proc

    def dpkg_versions(self, *names: str) -> dict[str, str]:
        """Installed versions on the host, from ``dpkg-query -W`` run there over SSH."""
        out = self.ssh("dpkg-query -W -f '${Package}\\t${Version}\\t${db:Status-Abbrev}\\n' "
                       + " ".join(shlex.quote(n) for n in names), check=False).stdout  # fmt: skip
        found = {}
        for line in out.splitlines():
            name, version, status = [*line.split("\t"), "", ""][:3]
            if status.startswith("ii"):
                found[name] = version
        return found

    def add_debs(self, debs: Sequence[Path]) -> None:
        """Put ``debs`` into the host's local repository and ``apt-get update`` there."""
        repo = self.root / REPO.lstrip("/")
        for deb in debs:
            shutil.copy(deb, repo / deb.name)
        _scan_packages(repo)
        self.ssh("apt-get update -q")

    def connection(self, health: Sequence[dict[str, object]] = ()) -> dict[str, object]:
        """The fleet file's ``connection:`` block for this host."""
        block: dict[str, object] = {
            "backend": "ssh",
            "host": "127.0.0.1",
            "port": self.port,
            "user": "root",
            "identity_file": str(self.client_key),
            "known_hosts": str(self.known_hosts),
        }
        if health:
            block["health"] = list(health)
        return block


class _Hosts:
    """Starts hosts on one image; stops all of them in :meth:`close`."""

    def __init__(self, image: Path) -> None:
        self.image = image
        self.tmp = Path(tempfile.mkdtemp(prefix=f"pw-debhosts-{os.getpid()}-"))
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, name: str) -> DebianHost:
        base = self.tmp / name
        for sub in ("upper", "work"):
            (base / sub).mkdir(parents=True)
        RUN_DIR.mkdir(mode=0o755, exist_ok=True)
        RUN_DIR.chmod(0o755)
        mnt = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{name}-", dir=RUN_DIR))
        keygen(base / "host_key")
        keygen(base / "client_key")
        auth = base / "authorized_keys"
        shutil.copy(base / "client_key.pub", auth)
        port = free_port()
        kind, key = (base / "host_key.pub").read_text().split()[:2]
        known = base / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {kind} {key}\n")
        config = base / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {base / 'host_key'}",
                    "PidFile none",
                    f"AuthorizedKeysFile {auth}",
                    f"ChrootDirectory {mnt}",
                    "UsePAM no",
                    "StrictModes no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "MaxStartups 50",
                    "MaxSessions 50",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
        script = (
            "set -e\n"
            f"mount -t overlay overlay -o lowerdir={self.image},upperdir={base / 'upper'},"
            f"workdir={base / 'work'} {mnt}\n"
            f"mount -t proc proc {mnt}/proc\n"
            f"exec {SSHD} -D -e -f {config}\n"
        )
        log = base / "sshd.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    # setpriv: unshare gets SIGKILL when pytest dies (PR_SET_PDEATHSIG)
                    "setpriv", "--pdeathsig", "KILL",
                    "unshare", "--fork", "--pid", "--kill-child", "--mount",
                    "--propagation", "private", "sh", "-c", script,
                ],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.procs.append((proc, mnt))
        deadline = time.monotonic() + 15
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"test host {name}: sshd did not start: {log.read_text()}")
            time.sleep(0.02)
        root = Path(f"/proc/{proc.pid}/root") / mnt.relative_to("/")
        return DebianHost(
            name=name,
            port=port,
            client_key=base / "client_key",
            known_hosts=known,
            root=root,
            log=log,
        )

    def close(self) -> None:
        for proc, mnt in self.procs:
            children = _children(proc.pid)
            # unshare blocks SIGTERM while it waits; SIGKILL it, and --kill-child's
            # PR_SET_PDEATHSIG kills sshd, PID 1 of the namespace, and so all of the namespace.
            proc.kill()
            proc.wait(10)
            deadline = time.monotonic() + 10
            while any(_alive(c) for c in children) and time.monotonic() < deadline:
                time.sleep(0.02)
            with contextlib.suppress(OSError):
                mnt.rmdir()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _sweep() -> None:
    """Remove what an earlier, killed pytest left: empty mount points and host temp dirs.

    Its hosts died with it (PR_SET_PDEATHSIG), and their mounts with their namespaces; both
    kinds of folder carry the pid of the pytest that made them.
    """
    leftovers = [*Path(tempfile.gettempdir()).glob("pw-debhosts-*")]
    if RUN_DIR.is_dir():
        leftovers.extend(RUN_DIR.iterdir())
    for path in leftovers:
        pid = path.name.removeprefix("pw-debhosts-").split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            if path.parent == RUN_DIR:
                with contextlib.suppress(OSError):
                    path.rmdir()  # never recursive: a live mount would be emptied
            else:
                shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def debian_image() -> DebianImage:
    """The cached bookworm image with openssl :data:`OPENSSL_OLD` (built when missing)."""
    _need_tools()
    _sweep()
    return openssl_image()


@pytest.fixture(scope="session")
def openssl_debs(debian_image: DebianImage) -> dict[tuple[str, str], Path]:
    """(package, version) -> the real openssl/libssl3 .deb, for :data:`OPENSSL_OLD`/``FIXED``."""
    return debian_image.debs


@pytest.fixture
def debian_host(debian_image: DebianImage) -> Iterator[Callable[[str], DebianHost]]:
    """``debian_host(name)``: a fresh test host with the old openssl, stopped after the test."""
    hosts = _Hosts(debian_image.root)
    try:
        yield hosts.start
    finally:
        hosts.close()
