"""Executing changes: steps, backends (local, ssh, simulate, ansible), health, restart, run log.

Backends are picked by name from :data:`BACKENDS` at the edges (the CLI); the core receives an
:class:`~patchwarden.execute.interface.Executor` instance.
"""

from __future__ import annotations

from patchwarden.execute.interface import (
    Applied,
    Become,
    ExecuteError,
    Executor,
    Failed,
    Host,
    Outcome,
    Reason,
    RolledBack,
    Skipped,
    StepResult,
)
from patchwarden.execute.local import LocalExecutor
from patchwarden.execute.simulate import SimulatedExecutor
from patchwarden.execute.ssh import SshExecutor
from patchwarden.execute.steps import Change, PackageManager, Pin, Step, StepKind

BACKENDS: dict[str, type[Executor]] = {
    "local": LocalExecutor,
    "ssh": SshExecutor,
    "simulate": SimulatedExecutor,
}
"""Backend name -> class (``ansible`` lives in :mod:`patchwarden.execute.ansible`, imported on
use because ansible-runner is heavy)."""

__all__ = [
    "BACKENDS",
    "Applied",
    "Become",
    "Change",
    "ExecuteError",
    "Executor",
    "Failed",
    "Host",
    "LocalExecutor",
    "Outcome",
    "PackageManager",
    "Pin",
    "Reason",
    "RolledBack",
    "SimulatedExecutor",
    "Skipped",
    "SshExecutor",
    "Step",
    "StepKind",
    "StepResult",
]
