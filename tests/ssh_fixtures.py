"""Real test hosts: a private OpenSSH sshd on 127.0.0.1, keys, known_hosts, an unprivileged user.

A pytest plugin (``pytest_plugins`` in tests/conftest.py), so every test folder gets the
fixtures ``sshd``, ``ssh_host``, ``unprivileged_user``, ``unused_port`` and ``wrong_key_host``;
the helpers :func:`need_root`, :func:`free_port`, :func:`keygen` and :class:`Sshd` are
importable (``from tests.ssh_fixtures import Sshd``).

The sshd is the machine's own ``/usr/sbin/sshd`` (Debian ``openssh-server``; scripts/system-deps.sh
installs it) started in the foreground with a private config: a free port on 127.0.0.1, a fresh
ed25519 host key, ``UsePAM no``, ``StrictModes no``, one AuthorizedKeysFile for every user and a
PidFile in the temp dir. Nothing of the machine's own ssh setup is read or changed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from patchwarden.execute import Host
from patchwarden.model import AssetId

SSHD = Path("/usr/sbin/sshd")


def need_root() -> None:
    """Fail under CI (which runs as root), else skip, when not root."""
    if os.geteuid() != 0:
        reason = "needs root (sshd for other users, useradd, mount)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Sshd:
    """A running private sshd."""

    port: int
    client_key: Path
    known_hosts: Path
    home: Path

    def host(self, name: str = "h1", user: str = "root") -> Host:
        """A host on this sshd with host-key checking against the test's known_hosts."""
        return Host(
            name=AssetId(name),
            address="127.0.0.1",
            port=self.port,
            user=user,
            client_keys=(self.client_key,),
            known_hosts=self.known_hosts,
            connect_timeout=10,
            command_timeout=300,
        )


def keygen(path: Path) -> None:
    """An ed25519 key pair without passphrase at ``path`` and ``path.pub``."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    """Start sshd for the session; stop it (by its pid) at the end."""
    need_root()
    if not SSHD.is_file():
        pytest.fail(f"{SSHD} is missing: run scripts/system-deps.sh (installs openssh-server)")
    # Not under pytest's 0700 temp root: sshd reads authorized_keys as the logging-in user.
    home = Path(tempfile.mkdtemp(prefix="patchwarden-sshd-"))
    home.chmod(0o755)
    keygen(home / "host_key")
    keygen(home / "client_key")
    auth = home / "authorized_keys"
    shutil.copy(home / "client_key.pub", auth)
    auth.chmod(0o644)
    port = free_port()
    host_pub = (home / "host_key.pub").read_text().split()
    known = home / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    config = home / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {home / 'host_key'}",
                f"PidFile {home / 'sshd.pid'}",
                f"AuthorizedKeysFile {auth}",
                "UsePAM no",
                "StrictModes no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "MaxStartups 100",
                "MaxSessions 100",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    log = (home / "sshd.log").open("w")
    proc = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            pytest.fail(f"sshd exited {proc.returncode}: {(home / 'sshd.log').read_text()}")
        time.sleep(0.05)
    try:
        yield Sshd(port=port, client_key=home / "client_key", known_hosts=known, home=home)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def unprivileged_user() -> Iterator[str]:
    """A user without sudo rights (made with useradd, removed at the end)."""
    need_root()
    name = f"pwtest{os.getpid() % 100000}"
    subprocess.run(
        ["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", "-p", "*", name],
        check=True,
        capture_output=True,
    )
    try:
        pwd.getpwnam(name)
        yield name
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


HostFactory = Callable[..., Host]


@pytest.fixture
def ssh_host(sshd: Sshd) -> HostFactory:
    """``ssh_host(name="h1", user="root")``: a host on the test sshd, host key checked."""
    return sshd.host


@pytest.fixture
def unused_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    return free_port()


@pytest.fixture
def wrong_key_host(sshd: Sshd, tmp_path: Path) -> Host:
    """The sshd's host, but with a known_hosts naming a different key for it."""
    tmp = tmp_path
    keygen(tmp / "other")
    other = (tmp / "other.pub").read_text().split()
    known = tmp / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
    return replace(sshd.host(), known_hosts=known)
