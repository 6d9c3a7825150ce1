"""Health checks that must pass after a change: command, HTTP, TCP port, systemd unit.

``command`` and ``systemd`` checks run on the host through the executor (``systemctl
is-active --quiet UNIT`` exits 0 only for an active unit); ``http`` and ``tcp`` checks run from
where patchwarden runs, as a load balancer or monitor would see the service (HTTP with httpx).
Each check retries until its ``timeout`` passes (services take a moment to come back).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from patchwarden.execute.steps import Step, StepKind

if TYPE_CHECKING:
    from patchwarden.execute.interface import Executor, Host, StepResult


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandCheck:
    """A command on the host that must exit 0."""

    argv: tuple[str, ...]
    """The command."""
    become: bool = False
    """Run it as root."""
    timeout: float = 0.0
    """Keep retrying for this many seconds (0: one try)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpCheck:
    """A URL that must answer with ``status``."""

    url: str
    """The URL."""
    status: int = 200
    """The expected status code."""
    timeout: float = 0.0
    """Keep retrying for this many seconds (0: one try)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpCheck:
    """A TCP port that must accept a connection."""

    address: str
    """Host name or IP."""
    port: int
    """Port."""
    timeout: float = 0.0
    """Keep retrying for this many seconds (0: one try)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemdCheck:
    """A systemd unit that must be active."""

    unit: str
    """The unit (``nginx.service``)."""
    timeout: float = 0.0
    """Keep retrying for this many seconds (0: one try)."""


HealthCheck = CommandCheck | HttpCheck | TcpCheck | SystemdCheck
"""One health check."""


def describe(check: HealthCheck) -> str:
    """One line naming the check.

    >>> describe(HttpCheck(url="http://127.0.0.1:8080/health"))
    'http GET http://127.0.0.1:8080/health == 200'
    >>> describe(SystemdCheck(unit="nginx.service"))
    'systemd nginx.service active'
    """
    match check:
        case CommandCheck():
            return "command " + " ".join(check.argv)
        case HttpCheck():
            return f"http GET {check.url} == {check.status}"
        case TcpCheck():
            return f"tcp {check.address}:{check.port} open"
        case SystemdCheck():
            return f"systemd {check.unit} active"


def check_step(check: CommandCheck | SystemdCheck) -> Step:
    """The host-side command of a command or systemd check."""
    if isinstance(check, SystemdCheck):
        argv: tuple[str, ...] = ("systemctl", "is-active", "--quiet", check.unit)
        become = False
    else:
        argv, become = check.argv, check.become
    return Step(kind=StepKind.HEALTH, argv=argv, become=become, description=describe(check))


async def http_status(url: str, *, timeout: float = 5.0) -> int:
    """The status code of a GET on ``url`` (raises ``httpx.HTTPError`` when it cannot connect)."""
    import httpx  # on use: CLI start-up does not pay for it

    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
        response = await client.get(url)
        return response.status_code


async def tcp_open(address: str, port: int, *, timeout: float = 5.0) -> bool:
    """True when ``address:port`` accepts a TCP connection within ``timeout`` seconds."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _once(
    executor: Executor, host: Host, check: HealthCheck, done: list[StepResult]
) -> str | None:
    """None when the check passes, else why it failed."""
    match check:
        case CommandCheck() | SystemdCheck():
            result = await executor.step(host, check_step(check), done)
            if result.ok:
                return None
            detail = result.message or (result.stderr or result.stdout).strip()[-300:]
            return f"{describe(check)}: exit {result.rc}" + (f": {detail}" if detail else "")
        case HttpCheck():
            import httpx

            try:
                status = await http_status(check.url)
            except httpx.HTTPError as exc:
                return f"{describe(check)}: {type(exc).__name__}: {exc}"
            return None if status == check.status else f"{describe(check)}: got {status}"
        case TcpCheck():
            ok = await tcp_open(check.address, check.port)
            return None if ok else f"{describe(check)}: connection refused or timed out"


async def run_health_checks(
    executor: Executor, host: Host, checks: Sequence[HealthCheck], done: list[StepResult]
) -> str | None:
    """Run ``checks`` in order; None when all pass, else the first failure's message."""
    for check in checks:
        deadline = time.monotonic() + check.timeout
        while True:
            problem = await _once(executor, host, check, done)
            if problem is None or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.5)
        if problem is not None:
            return f"health check failed: {problem}"
    return None
