"""``patchwarden k8s``: roll patched images out to Kubernetes workloads, and drain nodes safely.

Registered by :mod:`patchwarden.cli.main`; the shared helpers (store, policy, error exit) are
imported inside the commands so that the two modules do not import each other at load time.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from patchwarden.errors import ManifestError
from patchwarden.k8s import (
    ImageRef,
    image_updates,
    load_objects,
    parse_image_map,
    patch_manifests,
    plan_drain,
    plan_rollout,
    read_cluster,
    read_nodes,
    read_pods,
)
from patchwarden.prioritize import Action

k8s_app = typer.Typer(
    help=(
        "Kubernetes: plan image rollouts to workloads (rings, windows, PDB budgets, gates) "
        "and PDB-safe node drains, from manifests or `kubectl get -o json` output.\n\n"
        "Example:\n\n  patchwarden image scan app.tar\n\n"
        "  patchwarden k8s plan k8s/ --image-map app:1.0=app:1.0.1@sha256:... --out patched/\n\n"
        "  patchwarden k8s drain-plan --nodes nodes.json --pods pods.json --pdbs pdbs.json"
    ),
    no_args_is_help=True,
)

_out = Console(highlight=False, soft_wrap=True)


def _image_actions(store: Any) -> list[tuple[ImageRef, list[Action]]]:
    """Per scanned image asset whose name is an image reference: its planned actions."""
    from patchwarden.cli.main import _scored_open
    from patchwarden.prioritize import plan_actions

    out = []
    for row in store.assets():
        if row.get("kind") != "image":
            continue
        try:
            ref = ImageRef.parse(str(row["id"]))
        except ValueError:
            continue
        actions = plan_actions(_scored_open(store, (str(row["id"]),)))
        if actions:
            out.append((ref, actions))
    return out


@k8s_app.command("plan")
def k8s_plan(
    manifests: Annotated[
        list[Path], typer.Argument(help="YAML manifests, folders of them, or kubectl JSON.")
    ],
    image_map: Annotated[
        list[str],
        typer.Option("--image-map", help="OLD=NEW image references (NEW digest-pinned)."),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the patched manifests into this folder.")
    ] = None,
    now: Annotated[str | None, typer.Option("--now", help="Plan as of this ISO time.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Plan image updates per workload like host changes, print the kubectl commands.

    The findings an update closes are those of the scanned image whose asset name is the old
    reference (`patchwarden image scan app.tar` names it after the image's tag); an update
    that closes no known finding is listed as skipped.

    Example:

      patchwarden k8s plan deploy/ --out patched/
        --image-map registry.example/app:1.0=registry.example/app:1.0.1@sha256:DIGEST
    """
    from patchwarden.cli.main import Exit, _fail, _policy, _store
    from patchwarden.cli.plan_cmd import _parse_time

    try:
        pairs = parse_image_map(image_map)
        cluster = read_cluster(load_objects(manifests))
    except (ManifestError, ValueError) as exc:
        raise _fail(str(exc), Exit.USAGE) from exc
    at = _parse_time(now, "--now") if now else dt.datetime.now(dt.UTC)
    updates = image_updates(cluster, pairs)
    with _store() as store:
        image_actions = _image_actions(store)
        ids = {s.finding.vulnerability for _, acts in image_actions for a in acts for s in a.closes}
        kev = store.kev_entries(ids)
    result = plan_rollout(cluster, updates, image_actions, _policy().plan, at, kev=kev)
    patched = patch_manifests(result.rollouts)
    written: list[str] = []
    if out is not None:
        roots = [m.resolve() for m in manifests]
        for path, text in sorted(patched.items()):
            rel = next(
                (
                    path.resolve().relative_to(r)
                    for r in roots
                    if r.is_dir() and path.resolve().is_relative_to(r)
                ),
                Path(path.name),
            )
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            written.append(str(target))
    if as_json:
        doc = {
            "rollouts": [
                {
                    "workload": r.workload.key,
                    "asset": r.asset.id,
                    "change": r.change.id if r.change else None,
                    "start": r.change.start.isoformat() if r.change else None,
                    "end": r.change.end.isoformat() if r.change else None,
                    "ring": r.change.ring.value if r.change else None,
                    "wave": r.change.wave if r.change else None,
                    "emergency": r.change.emergency if r.change else None,
                    "gate": r.change.gate.decision.value if r.change else None,
                    "deadline": r.change.deadline.due.isoformat() if r.change else None,
                    "pdbs": list(r.pdbs),
                    "budget": r.budget,
                    "unavailable": r.unavailable,
                    "updates": [
                        {
                            "container": u.container.name,
                            "init": u.container.init,
                            "old": u.container.image.raw,
                            "new": u.new.raw,
                        }
                        for u in r.updates
                    ],
                    "strategy_patch": r.strategy_patch,
                    "warnings": list(r.warnings),
                    "commands": list(r.commands),
                }
                for r in result.rollouts
            ],
            "skipped": [
                {"workload": s.workload, "reason": s.reason.value, "message": s.message}
                for s in result.skipped
            ],
            "patched_files": written,
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    table = Table(title="image rollouts")
    for col in ("workload", "slot (UTC)", "ring", "gate", "pdb budget", "images"):
        table.add_column(col)
    for r in result.rollouts:
        c = r.change
        table.add_row(
            escape(r.workload.key),
            f"{c.start:%Y-%m-%d %H:%M}{' EMERGENCY' if c.emergency else ''}" if c else "",
            c.ring.value if c else "",
            c.gate.decision.value if c else "",
            "-" if r.budget is None else str(r.budget),
            escape(", ".join(f"{u.container.name}={u.new.raw}" for u in r.updates)),
        )
    _out.print(table)
    for r in result.rollouts:
        for w in r.warnings:
            _out.print(f"[yellow]warning[/] {escape(r.workload.key)}: {escape(w)}")
    for s in result.skipped:
        _out.print(f"skipped {escape(s.workload)}: {escape(s.message)}")
    if result.commands:
        _out.print("commands, in plan order:")
        for cmd in result.commands:
            _out.print(f"  {escape(cmd)}")
    for name in written:
        _out.print(f"wrote {escape(name)}")


@k8s_app.command("drain-plan")
def k8s_drain_plan(
    nodes: Annotated[Path, typer.Option("--nodes", help="`kubectl get nodes -o json` output.")],
    pods: Annotated[Path, typer.Option("--pods", help="`kubectl get pods -A -o json` output.")],
    pdbs: Annotated[
        list[Path], typer.Option("--pdbs", help="`kubectl get pdb -A -o json` or manifests.")
    ],
    reboot: Annotated[
        list[str] | None,
        typer.Option("--reboot", help="A node that needs a reboot (repeat; default: all)."),
    ] = None,
    max_parallel: Annotated[
        int, typer.Option("--max-parallel", min=1, help="Nodes drained at once at most.")
    ] = 1,
    reboot_command: Annotated[
        str, typer.Option("--reboot-command", help="How to reboot a node ({node} is replaced).")
    ] = "ssh {node} sudo systemctl reboot",
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Order node reboots so that no step evicts more pods of a PDB than it allows (as Kured).

    Example:

      kubectl get nodes -o json > nodes.json; kubectl get pods -A -o json > pods.json

      kubectl get pdb -A -o json > pdbs.json

      patchwarden k8s drain-plan --nodes nodes.json --pods pods.json --pdbs pdbs.json
        --reboot node-1 --reboot node-2
    """
    from patchwarden.cli.main import Exit, _fail

    try:
        names = read_nodes(load_objects([nodes]))
        pod_list = read_pods(load_objects([pods]))
        budget = read_cluster(load_objects(pdbs)).pdbs
    except ManifestError as exc:
        raise _fail(str(exc), Exit.USAGE) from exc
    wanted = list(reboot or names)
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise _fail(f"--reboot names unknown node(s): {', '.join(unknown)}", Exit.USAGE)
    plan = plan_drain(
        wanted, pod_list, budget, max_parallel=max_parallel, reboot_command=reboot_command
    )
    if as_json:
        doc = {
            "allowed": dict(plan.allowed),
            "steps": [
                {
                    "index": s.index,
                    "nodes": list(s.nodes),
                    "evictions": dict(s.evictions),
                    "commands": list(s.commands),
                }
                for s in plan.steps
            ],
            "blocked": [
                {
                    "node": b.node,
                    "pdb": b.pdb,
                    "pods": b.pods,
                    "allowed": b.allowed,
                    "message": b.message,
                }
                for b in plan.blocked
            ],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        for s in plan.steps:
            _out.print(f"step {s.index}: {escape(', '.join(s.nodes))}")
            for cmd in s.commands:
                _out.print(f"  {escape(cmd)}")
        for b in plan.blocked:
            _out.print(f"[red]blocked[/] {escape(b.message)}")
    if plan.blocked:
        raise typer.Exit(Exit.PARTIAL)
