"""The ``simulate`` backend: hosts in memory, with seeded failure injection.

For dry runs, rollout rehearsals and benchmarks: every step "runs" against an in-memory package
table, and a seeded random draw (``failure_rate``), or an explicit ``inject`` table, makes some
hosts fail in the ways real ones do: unreachable, disk full during apply, package not found,
an apply that leaves the old version (verify fails), a failing health check. The same seed gives
the same failures for the same hosts, whatever the order they run in.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from patchwarden.execute.interface import Executor, Host, Reason, StepResult
from patchwarden.execute.steps import Change, PackageManager, Step, StepKind

INJECTABLE: tuple[Reason, ...] = (
    Reason.UNREACHABLE,
    Reason.DISK_FULL,
    Reason.PACKAGE_NOT_FOUND,
    Reason.VERIFY_FAILED,
    Reason.HEALTH_CHECK_FAILED,
)
"""The failures the simulator can inject."""


def _listing(change: Change, table: Mapping[str, str]) -> str:
    lines = []
    for pin in change.targets:
        version = table.get(pin.name)
        if version is None:
            continue
        match change.manager:
            case PackageManager.APT:
                lines.append(f"{pin.name}\t{version}\t{pin.name}\t{version}\tii ")
            case PackageManager.APK:
                lines.append(f"{pin.name}-{version} x86_64 {{{pin.name}}} () [installed]")
            case PackageManager.DNF | PackageManager.PIP:
                lines.append(f"{pin.name}\t{version}")
    return "".join(line + "\n" for line in lines)


class SimulatedExecutor(Executor):
    """In-memory hosts (see the module docstring)."""

    name = "simulate"

    def __init__(
        self,
        *,
        seed: int = 0,
        failure_rate: float = 0.0,
        inject: Mapping[str, Reason] | None = None,
        installed: Mapping[str, Mapping[str, str]] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be within 0..1, got {failure_rate}")
        bad = {r for r in (inject or {}).values() if r not in INJECTABLE}
        if bad:
            raise ValueError(f"cannot inject {sorted(bad)}; injectable: {list(INJECTABLE)}")
        self.seed = seed
        """Seed of the failure draw."""
        self.failure_rate = failure_rate
        """Share of hosts that fail (drawn per host from the seed)."""
        self.inject = dict(inject or {})
        """Host -> the failure it gets (wins over the draw)."""
        self.state: dict[str, dict[str, str]] = {h: dict(t) for h, t in (installed or {}).items()}
        """Host -> package -> installed version (filled from the plan's previous versions)."""
        self.commands: list[tuple[str, tuple[str, ...]]] = []
        """Every (host, argv) "run", in order."""

    def failure_for(self, host: str) -> Reason | None:
        """The failure ``host`` gets: the injected one, else the seeded draw's."""
        if host in self.inject:
            return self.inject[host]
        if self.failure_rate <= 0:
            return None
        rng = random.Random(f"{self.seed}:{host}")
        if rng.random() >= self.failure_rate:
            return None
        return rng.choice(INJECTABLE)

    async def run(self, host: Host, step: Step) -> StepResult:
        """Apply ``step`` to the in-memory host."""
        self.commands.append((host.name, step.argv))
        failure = self.failure_for(host.name)
        if failure is Reason.UNREACHABLE:
            return StepResult(
                step=step,
                rc=None,
                reason=Reason.UNREACHABLE,
                message=f"{host.name}: simulated: host unreachable",
            )
        table = self.state.setdefault(host.name, {})
        if step.change is not None:
            for pin in step.change.previous:
                table.setdefault(pin.name, pin.version)
        match step.kind:
            case StepKind.SNAPSHOT | StepKind.VERIFY:
                assert step.change is not None
                return StepResult(step=step, rc=0, stdout=_listing(step.change, table))
            case StepKind.APPLY | StepKind.ROLLBACK:
                if step.kind is StepKind.APPLY and failure is Reason.DISK_FULL:
                    err = "E: simulated: write error (28: No space left on device)\n"
                    return StepResult(step=step, rc=100, stderr=err)
                if step.kind is StepKind.APPLY and failure is Reason.PACKAGE_NOT_FOUND:
                    names = ", ".join(p.name for p in step.pins)
                    err = f"E: simulated: Unable to locate package {names}\n"
                    return StepResult(step=step, rc=100, stderr=err)
                if not (step.kind is StepKind.APPLY and failure is Reason.VERIFY_FAILED):
                    for pin in step.pins:
                        table[pin.name] = pin.version
                return StepResult(step=step, rc=0)
            case StepKind.HEALTH:
                if failure is Reason.HEALTH_CHECK_FAILED:
                    return StepResult(step=step, rc=1, stderr="simulated: health check failed\n")
                return StepResult(step=step, rc=0)
            case StepKind.RESTART_CHECK:
                return StepResult(step=step, rc=0, stdout="kernel simulated\n")
            case StepKind.RESTART | StepKind.REBOOT:
                return StepResult(step=step, rc=0)
