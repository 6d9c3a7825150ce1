"""The ``ssh`` backend: asyncssh, key authentication, host keys checked by default.

* Host keys are checked against the host's ``known_hosts`` file (default
  ``~/.ssh/known_hosts``); a key that differs is refused with ``host_key_mismatch``, a host
  missing from the file with ``host_key_unknown``. Only a host with ``check_host_key=False``
  (throw-away test hosts) skips the check.
* Key authentication only (``client_keys``, else the agent and ``~/.ssh/id_*``); no passwords.
* A step that needs root runs under ``sudo -n --`` when the login user is not root; sudo that
  wants a password or refuses the user is ``sudo_refused``.
* One connection per host, reused for all of its steps; :meth:`Executor.apply_all` bounds how
  many hosts run at once (``max_concurrency``). Hosts share a connection only when they share
  the address, port and user *and* the trust settings (known_hosts, keys, host key checking):
  an asset whose known_hosts names another key is refused, even beside one that connected.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from typing import TYPE_CHECKING

from patchwarden.execute.interface import Executor, Host, Reason, StepResult, full_argv
from patchwarden.execute.steps import Step

if TYPE_CHECKING:  # imported on first use: asyncssh costs ~0.3 s at CLI start-up
    import asyncssh


class SshExecutor(Executor):
    """Runs steps over SSH (see the module docstring)."""

    name = "ssh"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type,unused-ignore]
        self._connections: dict[_Key, asyncssh.SSHClientConnection] = {}
        self._locks: dict[_Key, asyncio.Lock] = {}

    async def _connect(self, host: Host) -> asyncssh.SSHClientConnection | StepResult:
        import asyncssh

        key = _key(host)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            conn = self._connections.get(key)
            if conn is not None:
                return conn
            known: object
            if not host.check_host_key:
                known = None
            elif host.known_hosts is not None:
                known = str(host.known_hosts)
            else:
                known = ()  # asyncssh's default: ~/.ssh/known_hosts
            options: dict[str, object] = {
                "username": host.user,
                "port": host.port,
                "connect_timeout": host.connect_timeout,
                "preferred_auth": "publickey",
            }
            if known != ():
                options["known_hosts"] = known
            if host.client_keys:
                options["client_keys"] = [str(k) for k in host.client_keys]
                options["agent_path"] = None
            try:
                conn = await asyncssh.connect(host.address, **options)
            except asyncssh.HostKeyNotVerifiable as exc:
                return self._refused(host, exc)
            except asyncssh.PermissionDenied as exc:
                return _error(Reason.AUTH_FAILED, f"{_where(host)}: authentication refused: {exc}")
            except (OSError, TimeoutError, asyncssh.Error) as exc:
                return _error(Reason.UNREACHABLE, f"{_where(host)}: cannot connect: {exc}")
            self._connections[key] = conn
            return conn

    def _refused(self, host: Host, exc: Exception) -> StepResult:
        text = str(exc)
        where = _where(host)
        if "mismatch" in text.lower() or "changed" in text.lower() or _listed(host):
            return _error(
                Reason.HOST_KEY_MISMATCH,
                f"{where}: host key does not match {host.known_hosts or '~/.ssh/known_hosts'} "
                f"(refused: {text})",
            )
        return _error(
            Reason.HOST_KEY_UNKNOWN,
            f"{where}: host is not in {host.known_hosts or '~/.ssh/known_hosts'} (refused: {text})",
        )

    async def run(self, host: Host, step: Step) -> StepResult:
        """Run ``step`` on ``host`` over its (cached) connection."""
        import asyncssh

        got = await self._connect(host)
        if isinstance(got, StepResult):
            return StepResult(step=step, rc=None, reason=got.reason, message=got.message)
        argv = full_argv(host, step)
        started = time.monotonic()
        try:
            done = await asyncio.wait_for(
                got.run(shlex.join(argv), check=False, stdin=asyncssh.DEVNULL),
                host.command_timeout,
            )
        except TimeoutError:
            return StepResult(
                step=step,
                rc=None,
                reason=Reason.TIMEOUT,
                message=f"{_where(host)}: {step.kind.value} took longer than {host.command_timeout:g} s",  # noqa: E501
            )
        except (OSError, asyncssh.Error) as exc:
            self._connections.pop(_key(host), None)
            return StepResult(
                step=step, rc=None, reason=Reason.UNREACHABLE, message=f"{_where(host)}: {exc}"
            )
        stdout = _text(done.stdout)
        stderr = _text(done.stderr)
        rc = done.exit_status
        reason = None
        message = ""
        if rc and argv[:2] == ("sudo", "-n") and _sudo_refused(stderr):
            reason = Reason.SUDO_REFUSED
            message = f"{_where(host)}: sudo refused for {host.user}: {stderr.strip()[:300]}"
        return StepResult(
            step=step,
            rc=rc,
            stdout=stdout,
            stderr=stderr,
            seconds=time.monotonic() - started,
            reason=reason,
            message=message,
        )

    async def aclose(self) -> None:
        """Close every connection."""
        conns = list(self._connections.values())
        self._connections.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            await conn.wait_closed()


_Key = tuple[str, int, str, str | None, tuple[str, ...], bool]


def _key(host: Host) -> _Key:
    """What a cached connection must match: where, who, and how the host was trusted."""
    known = str(host.known_hosts) if host.known_hosts is not None else None
    keys = tuple(str(k) for k in host.client_keys)
    return (host.address, host.port, host.user, known, keys, host.check_host_key)


def _where(host: Host) -> str:
    return f"{host.name} ({host.user}@{host.address}:{host.port})"


def _error(reason: Reason, message: str) -> StepResult:
    from patchwarden.execute.steps import StepKind

    placeholder = Step(kind=StepKind.SNAPSHOT, argv=(), become=False)
    return StepResult(step=placeholder, rc=None, reason=reason, message=message)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _listed(host: Host) -> bool:
    """True when the known_hosts file has an entry for the host (so a refusal is a mismatch)."""
    if host.known_hosts is None or not host.known_hosts.is_file():
        return False
    names = {host.address, f"[{host.address}]:{host.port}"}
    for line in host.known_hosts.read_text(encoding="utf-8", errors="replace").splitlines():
        first = line.split(" ", 1)[0]
        if names & set(first.split(",")):
            return True
    return False


def _sudo_refused(stderr: str) -> bool:
    """True for sudo's own refusals (password required, not in sudoers, not allowed).

    >>> _sudo_refused("sudo: a password is required\\n")
    True
    >>> _sudo_refused("E: Unable to locate package x")
    False
    """
    needles = ("password is required", "not in the sudoers", "not allowed", "may not run sudo")
    return any(
        line.startswith("sudo:") and any(n in line for n in needles)
        for line in stderr.lower().splitlines()
    )
