"""The executor interface: run steps on hosts, and the per-host outcomes.

An :class:`Executor` has one abstract verb, :meth:`Executor.run` (one step on one host), and
the batch methods built on it: :meth:`Executor.apply` runs one host's changes with snapshot,
apply, verify, health checks, rollback and the restart check; :meth:`Executor.apply_all` runs
many hosts under the executor's concurrency limit. A backend may override the batch methods
(the ansible backend runs a whole playbook at once).

Outcomes keep their reason (house style point 4)::

    Outcome = Applied | Failed(reason) | RolledBack(reason) | Skipped(reason)

where the reason is a :class:`Reason` code plus a human message.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from patchwarden.errors import InvalidVersion, PatchwardenError
from patchwarden.execute.health import HealthCheck, run_health_checks
from patchwarden.execute.restart import RestartReport, parse_restart_scan, restart_scan_step
from patchwarden.execute.runlog import RunLog
from patchwarden.execute.steps import (
    Change,
    Step,
    StepKind,
    parse_listing,
    plan_host,
    rollback_steps,
)
from patchwarden.model import AssetId
from patchwarden.versions import scheme_for


class ExecuteError(PatchwardenError):
    """Executing a change failed in a way no per-host outcome covers (bad host spec, ...).

    (Belongs in :mod:`patchwarden.errors` as a child of the root; kept here until it moves.)
    """


class Reason(StrEnum):
    """Why a host was not simply patched."""

    UNREACHABLE = "unreachable"
    HOST_KEY_MISMATCH = "host_key_mismatch"
    HOST_KEY_UNKNOWN = "host_key_unknown"
    AUTH_FAILED = "auth_failed"
    SUDO_REFUSED = "sudo_refused"
    DISK_FULL = "disk_full"
    PACKAGE_NOT_FOUND = "package_not_found"
    COMMAND_FAILED = "command_failed"
    TIMEOUT = "timeout"
    SNAPSHOT_FAILED = "snapshot_failed"
    VERIFY_FAILED = "verify_failed"
    HEALTH_CHECK_FAILED = "health_check_failed"
    ROLLBACK_FAILED = "rollback_failed"
    NOTHING_TO_DO = "nothing_to_do"
    INJECTED = "injected"


CONNECTION_REASONS = frozenset(
    {Reason.UNREACHABLE, Reason.HOST_KEY_MISMATCH, Reason.HOST_KEY_UNKNOWN, Reason.AUTH_FAILED}
)
"""Reasons meaning the host was never reached: nothing was changed there."""

NOT_STARTED_REASONS = frozenset(
    {Reason.HOST_KEY_MISMATCH, Reason.HOST_KEY_UNKNOWN, Reason.AUTH_FAILED, Reason.SUDO_REFUSED}
)
"""Reasons of a step whose command never started (the connection or ``sudo -n`` refused it), so a
failed apply with one of them changed nothing and needs no rollback. ``unreachable`` is not one:
a connection lost in the middle of a command may have left it half done."""


class Become(StrEnum):
    """When commands are prefixed with ``sudo -n`` (:meth:`Host.sudo_for`)."""

    AUTO = "auto"
    """Commands that need root (system package managers, the restart check, health checks
    marked ``become``), when the login user is not root."""
    ALWAYS = "always"
    """Those, whoever logs in, and pip's installs too (a Python environment owned by root;
    pip's read-only listings still run as the login user)."""
    NEVER = "never"
    """No sudo at all (the login user has the rights it needs)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    """Where and how to reach one asset."""

    name: AssetId
    """The asset id."""
    address: str = "127.0.0.1"
    """Host name or IP address (ssh/ansible)."""
    port: int = 22
    """SSH port."""
    user: str = "root"
    """Login user."""
    client_keys: tuple[Path, ...] = ()
    """Private key files (empty: the SSH agent and ``~/.ssh/id_*``)."""
    known_hosts: Path | None = None
    """known_hosts file to check host keys against (None: ``~/.ssh/known_hosts``)."""
    check_host_key: bool = True
    """False only for throw-away test hosts: skips host key checking."""
    become: Become = Become.AUTO
    """Sudo policy."""
    python: str = "python3"
    """The interpreter whose pip manages the host's PyPI packages."""
    health: tuple[HealthCheck, ...] = ()
    """Checks that must pass after the change."""
    connect_timeout: float = 10.0
    """Seconds to wait for a connection."""
    command_timeout: float = 1800.0
    """Seconds one command may take."""

    @property
    def needs_sudo(self) -> bool:
        """True when root commands get ``sudo -n``."""
        match self.become:
            case Become.ALWAYS:
                return True
            case Become.NEVER:
                return False
            case Become.AUTO:
                return self.user != "root"

    def sudo_for(self, step: Step, *, root: bool | None = None) -> bool:
        """True when ``step`` runs under ``sudo -n`` on this host (see :class:`Become`);
        ``root``: whether the login user is root (default: ``user == "root"``).

        >>> from patchwarden.execute.steps import Change, PackageManager, Pin, install_step
        >>> ch = Change(manager=PackageManager.PIP, ecosystem="PyPI",
        ...             targets=(Pin(name="urllib3", version="1.26.18"),))
        >>> pip = install_step(ch, ch.targets, kind=StepKind.APPLY)
        >>> host = Host(name=AssetId("h"), user="deploy")
        >>> host.sudo_for(pip), replace(host, become=Become.ALWAYS).sudo_for(pip)
        (False, True)
        """
        is_root = self.user == "root" if root is None else root
        match self.become:
            case Become.NEVER:
                return False
            case Become.AUTO:
                return step.become and not is_root
            case Become.ALWAYS:
                return step.become or step.kind in (StepKind.APPLY, StepKind.ROLLBACK)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepResult:
    """What one step did."""

    step: Step
    """The step."""
    rc: int | None
    """Exit status (None: the command never ran or was killed)."""
    stdout: str = ""
    """Its standard output."""
    stderr: str = ""
    """Its standard error."""
    seconds: float = 0.0
    """Wall time."""
    reason: Reason | None = None
    """Set when the step failed: why (connection problems, sudo, disk, ...)."""
    message: str = ""
    """Human detail for ``reason``."""

    @property
    def ok(self) -> bool:
        """True when the command ran and exited 0."""
        return self.reason is None and self.rc == 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """Every change is installed, verified and healthy."""

    host: AssetId
    """The host."""
    installed: Mapping[str, str]
    """Package -> version after the change."""
    restart: RestartReport = field(default_factory=RestartReport)
    """What still runs old code (pending restart / reboot)."""
    steps: tuple[StepResult, ...] = ()
    """Every step that ran."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed:
    """The change failed and the host is not known to be back at its snapshot."""

    host: AssetId
    """The host."""
    reason: Reason
    """Why."""
    message: str
    """Human detail."""
    steps: tuple[StepResult, ...] = ()
    """Every step that ran."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RolledBack:
    """The change failed and the snapshot's versions were restored (and verified)."""

    host: AssetId
    """The host."""
    reason: Reason
    """Why the change was rolled back."""
    message: str
    """Human detail."""
    restored: Mapping[str, str]
    """Package -> version after the rollback."""
    steps: tuple[StepResult, ...] = ()
    """Every step that ran."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Skipped:
    """Nothing was done on the host."""

    host: AssetId
    """The host."""
    reason: Reason
    """Why."""
    message: str
    """Human detail."""
    steps: tuple[StepResult, ...] = ()
    """Steps that ran (only read-only ones)."""


Outcome = Applied | Failed | RolledBack | Skipped
"""What happened on one host."""


def classify_failure(stderr: str, stdout: str = "") -> Reason:
    """The reason a failed package command gives in its output.

    >>> classify_failure("E: Write error - write (28: No space left on device)")
    <Reason.DISK_FULL: 'disk_full'>
    >>> classify_failure("ERROR: No matching distribution found for foo==9")
    <Reason.PACKAGE_NOT_FOUND: 'package_not_found'>
    >>> classify_failure("sudo: a password is required")
    <Reason.SUDO_REFUSED: 'sudo_refused'>
    >>> classify_failure("something else")
    <Reason.COMMAND_FAILED: 'command_failed'>
    """
    text = f"{stderr}\n{stdout}".lower()
    if "no space left on device" in text or "errno 28" in text:
        return Reason.DISK_FULL
    if "sudo: a password is required" in text or (
        "is not in the sudoers file" in text or "not allowed to execute" in text
    ):
        return Reason.SUDO_REFUSED
    needles = (
        "no matching distribution found",
        "unable to locate package",
        "was not found",  # apt: Version '2' for 'x' was not found
        "no package ",  # dnf: No package x-2 available.
        "unable to select packages",  # apk
    )
    if any(n in text for n in needles):
        return Reason.PACKAGE_NOT_FOUND
    return Reason.COMMAND_FAILED


def _tail(text: str, limit: int = 400) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


class Executor(ABC):
    """Runs steps on hosts (see the module docstring)."""

    name: ClassVar[str]
    """Registry name (``local``, ``ssh``, ``simulate``, ``ansible``)."""

    def __init__(
        self, *, max_concurrency: int = 10, runlog: RunLog | None = None, restart_check: bool = True
    ) -> None:
        if max_concurrency < 1:
            raise ExecuteError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.max_concurrency = max_concurrency
        """How many hosts run at once."""
        self.runlog = runlog
        """Where every step is recorded (None: not recorded)."""
        self.restart_check = restart_check
        """Run the restart check after a successful change."""

    @abstractmethod
    async def run(self, host: Host, step: Step) -> StepResult:
        """Run ``step`` on ``host``; connection and sudo problems come back as a reason."""

    async def aclose(self) -> None:  # noqa: B027 -- optional hook, not abstract
        """Release connections (default: nothing to release)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def step(self, host: Host, step: Step, done: list[StepResult]) -> StepResult:
        if self.runlog is not None:
            self.runlog.event("step_start", host=host.name, kind=step.kind, argv=list(step.argv))
        started = time.monotonic()
        result = await self.run(host, step)
        if not result.seconds:
            result = replace(result, seconds=time.monotonic() - started)
        done.append(result)
        if self.runlog is not None:
            self.runlog.step(host.name, result)
        return result

    async def apply(self, host: Host, changes: Sequence[Change]) -> Outcome:
        """Snapshot, apply, verify, health-check one host; roll back when any of it fails."""
        done: list[StepResult] = []
        if not changes:
            return Skipped(host=host.name, reason=Reason.NOTHING_TO_DO, message="no changes")
        forward = plan_host(changes, python=host.python)
        snapshots: dict[int, dict[str, str]] = {}
        installed: dict[str, str] = {}
        failure: tuple[Reason, str] | None = None
        changed = False
        for step in forward:
            assert step.change is not None
            index = changes.index(step.change)
            result = await self.step(host, step, done)
            if not result.ok:
                reason = result.reason or classify_failure(result.stderr, result.stdout)
                started = reason not in NOT_STARTED_REASONS
                message = result.message or (
                    f"{step.kind.value} failed (exit {result.rc}): {_tail(result.stderr or result.stdout)}"  # noqa: E501
                )
                if step.kind is StepKind.SNAPSHOT and not changed:
                    if result.reason is None:
                        reason = Reason.SNAPSHOT_FAILED
                    return Skipped(
                        host=host.name, reason=reason, message=message, steps=tuple(done)
                    )
                if step.kind is StepKind.APPLY and started:
                    changed = True  # a failed install may have half-done something
                failure = (reason, message)
                break
            if step.kind is StepKind.SNAPSHOT:
                snapshots[index] = parse_listing(step.change, result.stdout)
            elif step.kind is StepKind.APPLY:
                changed = True
            elif step.kind is StepKind.VERIFY:
                found = parse_listing(step.change, result.stdout)
                problem = _verify(step.change, found)
                if problem:
                    failure = (Reason.VERIFY_FAILED, problem)
                    break
                installed.update(found)
        if failure is None and host.health:
            bad = await run_health_checks(self, host, host.health, done)
            if bad is not None:
                failure = (Reason.HEALTH_CHECK_FAILED, bad)
        if failure is None:
            report = RestartReport()
            if self.restart_check:
                scan = await self.step(host, restart_scan_step(), done)
                if scan.ok:
                    report = parse_restart_scan(scan.stdout)
            return Applied(host=host.name, installed=installed, restart=report, steps=tuple(done))
        reason, message = failure
        if not changed:
            return Failed(host=host.name, reason=reason, message=message, steps=tuple(done))
        return await self.rollback(host, changes, snapshots, reason, message, done)

    async def rollback(
        self,
        host: Host,
        changes: Sequence[Change],
        snapshots: Mapping[int, Mapping[str, str]],
        reason: Reason,
        message: str,
        done: list[StepResult],
    ) -> Outcome:
        restored: dict[str, str] = {}
        for step in rollback_steps(changes, snapshots, python=host.python):
            assert step.change is not None
            result = await self.step(host, step, done)
            if not result.ok:
                return Failed(
                    host=host.name,
                    reason=Reason.ROLLBACK_FAILED,
                    message=(
                        f"{message}; rollback failed (exit {result.rc}): "
                        f"{_tail(result.message or result.stderr or result.stdout)}"
                    ),
                    steps=tuple(done),
                )
            check = await self.step(
                host,
                Step(
                    kind=StepKind.VERIFY,
                    argv=_snapshot_argv(step, host),
                    become=False,
                    change=step.change,
                    description="verify rollback",
                ),
                done,
            )
            index = changes.index(step.change)
            want = dict(snapshots.get(index, {}))
            got = parse_listing(step.change, check.stdout) if check.ok else {}
            if got != want:
                return Failed(
                    host=host.name,
                    reason=Reason.ROLLBACK_FAILED,
                    message=f"{message}; after rollback installed {got}, snapshot was {want}",
                    steps=tuple(done),
                )
            restored.update(got)
        return RolledBack(
            host=host.name, reason=reason, message=message, restored=restored, steps=tuple(done)
        )

    async def apply_all(self, work: Sequence[tuple[Host, Sequence[Change]]]) -> list[Outcome]:
        """Apply every host's changes, at most :attr:`max_concurrency` hosts at once.

        Outcomes come back in the order of ``work``; one host's failure never stops another.
        """
        limit = asyncio.Semaphore(self.max_concurrency)

        async def one(host: Host, changes: Sequence[Change]) -> Outcome:
            async with limit:
                return await self.apply(host, changes)

        return list(await asyncio.gather(*(one(h, c) for h, c in work)))


def full_argv(host: Host, step: Step) -> tuple[str, ...]:
    """The command as it runs on ``host``: ``sudo -n --`` first when :meth:`Host.sudo_for` says
    so (``-n``: never prompt, fail instead, so a refusal is reported).
    """
    if host.sudo_for(step):
        return ("sudo", "-n", "--", *step.argv)
    return step.argv


def _snapshot_argv(step: Step, host: Host) -> tuple[str, ...]:
    from patchwarden.execute.steps import snapshot_step

    assert step.change is not None
    return snapshot_step(step.change, python=host.python).argv


def _verify(change: Change, found: Mapping[str, str]) -> str:
    """Empty when every target is installed at or above its version, else what is wrong."""
    scheme = scheme_for(change.ecosystem)
    problems: list[str] = []
    for pin in change.targets:
        have = found.get(pin.name)
        if have is None:
            problems.append(f"{pin.name} is not installed")
            continue
        try:
            if scheme.compare(have, pin.version) < 0:
                problems.append(f"{pin.name} is at {have}, below the target {pin.version}")
        except InvalidVersion as exc:
            problems.append(f"{pin.name}: {exc}")
    return "; ".join(problems)
