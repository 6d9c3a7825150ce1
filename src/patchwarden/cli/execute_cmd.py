"""``patchwarden execute``: apply upgrades to hosts (``--dry-run`` prints the exact commands)."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from patchwarden.execute import BACKENDS, Applied, Change, Host, Outcome, PackageManager, Pin
from patchwarden.execute.interface import full_argv
from patchwarden.execute.runlog import RunLog
from patchwarden.execute.steps import StepKind, install_step, plan_host
from patchwarden.model import AssetId

execute_app = typer.Typer(
    name="execute", help="Apply package upgrades to hosts.", no_args_is_help=True
)


def _changes(spec: list[str], manager: PackageManager, ecosystem: str) -> list[Change]:
    pins: list[Pin] = []
    previous: list[Pin] = []
    for item in spec:
        name, sep, version = item.partition("=")
        if not sep or not name or not version:
            raise typer.BadParameter(f"package {item!r}: expected NAME=VERSION")
        old = ""
        if ":" in version and manager is PackageManager.PIP:
            old, _, version = version.partition(":")
        pins.append(Pin(name=name, version=version))
        if old:
            previous.append(Pin(name=name, version=old))
    return [
        Change(manager=manager, ecosystem=ecosystem, targets=tuple(pins), previous=tuple(previous))
    ]


@execute_app.command("apply")
def apply_cmd(
    packages: Annotated[list[str], typer.Argument(help="NAME=VERSION targets")],
    host: Annotated[str, typer.Option(help="asset id")] = "localhost",
    address: Annotated[str, typer.Option(help="ssh address")] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 22,
    user: Annotated[str, typer.Option()] = "root",
    ecosystem: Annotated[str, typer.Option(help="e.g. Debian:12, PyPI")] = "Debian:12",
    python: Annotated[str, typer.Option(help="interpreter whose pip is used")] = "python3",
    backend: Annotated[str, typer.Option(help="local|ssh|simulate")] = "local",
    known_hosts: Annotated[Path | None, typer.Option()] = None,
    key: Annotated[list[Path] | None, typer.Option(help="private key file")] = None,
    runs: Annotated[Path, typer.Option(help="run records folder")] = Path("runs"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the commands only")] = False,
) -> None:
    """Upgrade PACKAGES on one host: snapshot, apply, verify, health, rollback on failure."""
    from patchwarden.execute.steps import manager_for

    try:
        manager = manager_for(ecosystem)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if backend not in BACKENDS:
        typer.echo(f"error: unknown backend {backend!r} (one of {', '.join(BACKENDS)})", err=True)
        raise typer.Exit(2)
    changes = _changes(packages, manager, ecosystem)
    target = Host(
        name=AssetId(host), address=address, port=port, user=user, python=python,
        known_hosts=known_hosts, client_keys=tuple(key or ()),
    )  # fmt: skip
    if dry_run:
        typer.echo(f"# {host} ({backend})")
        for step in plan_host(changes, python=python):
            typer.echo(f"{step.kind.value:9} {shlex.join(full_argv(target, step))}")
        for change in changes:
            if change.previous:
                step = install_step(change, change.previous, kind=StepKind.ROLLBACK, python=python)
                typer.echo(f"{'rollback':9} {shlex.join(full_argv(target, step))}  # on failure")
        return
    log = RunLog.create(runs, command=sys.argv, backend=backend)
    executor = BACKENDS[backend](runlog=log)

    async def go() -> Outcome:
        async with executor:
            return await executor.apply(target, changes)

    outcome = asyncio.run(go())
    log.outcome(outcome)
    ok = isinstance(outcome, Applied)
    log.close(0 if ok else 3)
    typer.echo(json.dumps({"host": host, "outcome": type(outcome).__name__,
                           "reason": getattr(outcome, "reason", None),
                           "message": getattr(outcome, "message", ""),
                           "run": str(log.directory)}))  # fmt: skip
    raise typer.Exit(0 if ok else 3)
