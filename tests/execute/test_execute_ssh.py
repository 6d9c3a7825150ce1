"""The ssh backend against a real sshd on 127.0.0.1 (see tests/ssh_fixtures.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from patchwarden.execute import Host, Reason, SshExecutor, Step, StepKind
from patchwarden.execute.interface import Become


def _step(*argv: str, become: bool = False) -> Step:
    return Step(kind=StepKind.HEALTH, argv=argv, become=become)


def _run(host: Host, step: Step) -> tuple[int | None, str, Reason | None, str]:
    async def go() -> tuple[int | None, str, Reason | None, str]:
        async with SshExecutor() as ex:
            r = await ex.run(host, step)
            return r.rc, r.stdout, r.reason, r.message

    return asyncio.run(go())


def test_runs_a_command_with_quoting(ssh_host: Callable[..., Host]) -> None:
    rc, out, reason, _ = _run(ssh_host(), _step("sh", "-c", 'echo "$0 $1"; exit 3', "a b", "c'd"))
    assert (rc, out, reason) == (3, "a b c'd\n", None)


def test_wrong_host_key_is_refused(wrong_key_host: Host) -> None:
    rc, _, reason, message = _run(wrong_key_host, _step("true"))
    assert rc is None
    assert reason is Reason.HOST_KEY_MISMATCH
    assert "host key does not match" in message


def test_a_cached_connection_is_not_reused_under_other_trust(
    ssh_host: Callable[..., Host], wrong_key_host: Host
) -> None:
    """Same address, port and user, other known_hosts: checked again, and refused."""
    good = ssh_host()
    assert (good.address, good.port, good.user) == (
        wrong_key_host.address, wrong_key_host.port, wrong_key_host.user
    )  # fmt: skip

    async def go() -> tuple[Reason | None, Reason | None, Reason | None]:
        async with SshExecutor() as ex:
            first = await ex.run(good, _step("true"))
            second = await ex.run(wrong_key_host, _step("true"))
            third = await ex.run(good, _step("true"))
            return first.reason, second.reason, third.reason

    assert asyncio.run(go()) == (None, Reason.HOST_KEY_MISMATCH, None)


def test_unknown_host_is_refused(ssh_host: Callable[..., Host], tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    _, _, reason, _ = _run(replace(ssh_host(), known_hosts=empty), _step("true"))
    assert reason is Reason.HOST_KEY_UNKNOWN


def test_unreachable_port(ssh_host: Callable[..., Host], unused_port: int) -> None:
    host = replace(ssh_host(), port=unused_port, connect_timeout=3)
    rc, _, reason, message = _run(host, _step("true"))
    assert (rc, reason) == (None, Reason.UNREACHABLE)
    assert "cannot connect" in message


def test_sudo_refused_for_a_user_without_rights(
    ssh_host: Callable[..., Host], unprivileged_user: str
) -> None:
    host = ssh_host(user=unprivileged_user)
    assert host.needs_sudo
    rc, out, reason, _ = _run(host, _step("id", "-un"))  # no root needed: runs as the user
    assert (rc, out.strip(), reason) == (0, unprivileged_user, None)
    rc, _, reason, message = _run(host, _step("id", "-u", become=True))
    assert reason is Reason.SUDO_REFUSED
    assert unprivileged_user in message
    never = replace(host, become=Become.NEVER)
    rc, out, reason, _ = _run(never, _step("id", "-u", become=True))
    assert (rc, reason) == (0, None)
    assert out.strip() != "0"


def test_pip_under_sudo_refused_changes_nothing_and_is_not_rolled_back(
    ssh_host: Callable[..., Host], unprivileged_user: str
) -> None:
    """become: always puts pip's install under sudo -n; refused, it never ran: no rollback."""
    from patchwarden.execute import Change, Failed, PackageManager, Pin

    host = replace(ssh_host("s1", user=unprivileged_user), become=Become.ALWAYS,
                   python="/usr/bin/python3")  # fmt: skip
    change = Change(
        manager=PackageManager.PIP, ecosystem="PyPI", targets=(Pin(name="pwnone", version="1"),)
    )

    async def go() -> object:
        async with SshExecutor(restart_check=False) as ex:
            return await ex.apply(host, [change])

    outcome = asyncio.run(go())
    assert isinstance(outcome, Failed), outcome
    assert outcome.reason is Reason.SUDO_REFUSED
    assert unprivileged_user in outcome.message
    assert [s.step.kind.value for s in outcome.steps] == ["snapshot", "apply"]
    assert outcome.steps[0].ok  # the listing runs as the user, without sudo


def test_concurrency_limit_is_respected(ssh_host: Callable[..., Host], tmp_path: Path) -> None:
    """Six hosts, limit 2: never more than 2 commands overlap, and they do overlap."""
    from patchwarden.execute import Change, PackageManager, Pin

    log = tmp_path / "log"
    script = f"echo start $(date +%s%N) >> {log}; sleep 0.3; echo end $(date +%s%N) >> {log}"
    hosts = [replace(ssh_host(f"h{i}"), health=()) for i in range(6)]
    change = Change(
        manager=PackageManager.PIP, ecosystem="PyPI", targets=(Pin(name="x", version="1"),)
    )

    class Probe(SshExecutor):
        async def apply(self, host: Host, changes: object) -> object:  # type: ignore[override]
            return await self.run(host, _step("sh", "-c", script))

    async def go() -> float:
        async with Probe(max_concurrency=2) as ex:
            t0 = time.monotonic()
            await ex.apply_all([(h, [change]) for h in hosts])
            return time.monotonic() - t0

    took = asyncio.run(go())
    events = sorted(
        (int(t), 1 if kind == "start" else -1)
        for kind, t in (line.split() for line in log.read_text().splitlines())
    )
    running = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        running += delta
        peak = max(peak, running)
    assert peak == 2
    assert took >= 0.9  # 3 rounds of 0.3 s
