"""The ``local`` backend: the machine patchwarden runs on.

Commands run as child processes (no shell); a step that needs root gets ``sudo -n --`` when
patchwarden itself is not root (and the host's ``become`` allows it; see :meth:`Host.sudo_for`).
"""

from __future__ import annotations

import asyncio
import os
import time

from patchwarden.execute.interface import Executor, Host, Reason, StepResult
from patchwarden.execute.steps import Step


class LocalExecutor(Executor):
    """Runs steps here."""

    name = "local"

    async def run(self, host: Host, step: Step) -> StepResult:
        """Run ``step`` as a child process, with the host's command timeout."""
        argv = step.argv
        root = os.geteuid() == 0
        if host.sudo_for(step, root=root):
            argv = ("sudo", "-n", "--", *argv)
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            return StepResult(
                step=step,
                rc=None,
                reason=Reason.COMMAND_FAILED,
                message=f"cannot run {argv[0]!r}: {exc}",
            )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), host.command_timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return StepResult(
                step=step,
                rc=None,
                reason=Reason.TIMEOUT,
                message=f"{step.kind.value} took longer than {host.command_timeout:g} s",
                seconds=time.monotonic() - started,
            )
        return StepResult(
            step=step,
            rc=proc.returncode,
            stdout=out.decode("utf-8", "replace"),
            stderr=err.decode("utf-8", "replace"),
            seconds=time.monotonic() - started,
        )
