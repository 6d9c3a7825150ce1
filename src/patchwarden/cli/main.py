"""The ``patchwarden`` command line.

Exit codes (stable, for CI gating):

* 0 - success (and, with ``--fail-on``, no finding at or above the threshold)
* 1 - ``findings --fail-on``: at least one finding at or above the threshold
* 2 - bad usage or bad input: nothing was done (unreadable fleet file, unknown option, ...)
* 3 - partial: some records or assets were skipped with a reported reason, the rest was done
* 4 - the database could not be opened or written
* 5 - ``audit verify``: the audit trail was tampered with (the first bad entry is named)
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from patchwarden import __version__
from patchwarden.cli.audit_cmd import audit_app, record_asset_update
from patchwarden.cli.execute_cmd import execute_app
from patchwarden.cli.progress import RichObserver
from patchwarden.cli.report_cmd import report_app
from patchwarden.cli.vex_cmd import statement_json, vex_app
from patchwarden.collect import duplicates, scan_fleet, start_workers
from patchwarden.errors import (
    FleetFileError,
    IntelError,
    InventoryError,
    PatchwardenError,
    PolicyError,
    StoreError,
)
from patchwarden.govern import in_force_acceptances, prioritised
from patchwarden.intel import READERS, FeedReader
from patchwarden.intel.debian_changelog import DebianChangelogReader
from patchwarden.inventory import load_sbom, scan_root
from patchwarden.inventory.fleet import load_fleet
from patchwarden.model import (
    Asset,
    AssetId,
    AssetKind,
    Environment,
    Finding,
    FixState,
    Inventory,
    Severity,
)
from patchwarden.policy import Policy, load_policy
from patchwarden.prioritize import (
    Action,
    ScoredFinding,
    fleet_upgrades,
    plan_actions,
    score_findings,
)
from patchwarden.risk import Decision
from patchwarden.service import ImportReport, ScanReport, import_feeds, prepare_inventory, scan
from patchwarden.store import FindingFilter, Store, default_url
from patchwarden.vex.service import suppressions as vex_suppressions


class Exit(IntEnum):
    """Process exit codes (see the module docstring)."""

    OK = 0
    GATE = 1
    USAGE = 2
    PARTIAL = 3
    STORE = 4


out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    name="patchwarden",
    help=(
        "Risk-based security patch management: know what is vulnerable on every asset, "
        "and fix it safely.\n\n"
        "Typical first run:\n\n"
        "  patchwarden feeds import ./osv-pypi ./debian/DSA/list ./kev.json ./epss.csv.gz\n\n"
        "  patchwarden scan --fleet fleet.yaml --local\n\n"
        "  patchwarden findings --severity high --fail-on critical"
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
feeds_app = typer.Typer(
    help=(
        "Vulnerability intelligence: advisories (OSV, Debian, Alpine), CISA KEV, FIRST EPSS."
        "\n\nExample:\n\n  patchwarden feeds import ./osv ./DSA/list ./kev.json ./epss.csv.gz"
        "\n\n  patchwarden feeds list"
    ),
    no_args_is_help=True,
)
app.add_typer(feeds_app, name="feeds")
app.add_typer(vex_app, name="vex")
from patchwarden.cli.image_cmd import image_app  # noqa: E402 - sub-app registered here
from patchwarden.cli.k8s_cmd import k8s_app  # noqa: E402 - sub-app registered here

app.add_typer(image_app, name="image")
app.add_typer(k8s_app, name="k8s")
app.add_typer(report_app, name="report")
app.add_typer(audit_app, name="audit")


class SortOrder(StrEnum):
    """How `findings` sorts."""

    RISK = "risk"
    SEVERITY = "severity"


class State:
    """Options shared by every command."""

    db: str = ""
    quiet: bool = False
    policy_path: Path | None = None


state = State()


def _version(value: bool) -> None:
    if value:
        out.print(f"patchwarden {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="PATCHWARDEN_DB",
            help="Database URL: a SQLite path or sqlite:///file.db, or postgresql://host/db. "
            "Default: a SQLite file under $XDG_DATA_HOME/patchwarden.",
            show_default=False,
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            envvar="PATCHWARDEN_POLICY",
            help="Policy file (risk weights, ...); see policy.example.yaml. Default: built-in.",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars or notes on stderr.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Global options."""
    state.db = db or default_url()
    state.quiet = quiet
    state.policy_path = policy


def _fail(message: str, code: Exit) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(int(code))


@contextmanager
def _store() -> Iterator[Store]:
    try:
        store = Store.open(state.db)
    except StoreError as exc:
        raise _fail(str(exc), Exit.STORE) from exc
    try:
        yield store
    except StoreError as exc:
        raise _fail(str(exc), Exit.STORE) from exc
    finally:
        store.close()


def _policy() -> Policy:
    if state.policy_path is None:
        return Policy.default()
    try:
        return load_policy(state.policy_path)
    except PolicyError as exc:
        raise _fail(str(exc), Exit.USAGE) from exc


def _observer() -> RichObserver:
    return RichObserver(err, enabled=not state.quiet and err.is_terminal)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# --------------------------------------------------------------------------- feeds


@feeds_app.command("import")
def feeds_import(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Files or directories: OSV JSON/YAML (file, tree or all.zip), Debian DSA/DLA "
            "list or tracker JSON, Alpine secdb JSON, CISA KEV JSON, FIRST EPSS CSV(.gz), "
            "Debian .deb packages or changelog.Debian(.gz) files (the CVE ids they fix).",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"Skip auto-detection and read every path as: {', '.join(sorted(READERS))}.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    release: Annotated[
        str | None,
        typer.Option(
            "--release",
            help="debian-changelog only: the release the changelogs belong to (12, bookworm, "
            "Debian:12), when their top entry does not tell (unstable uploads).",
        ),
    ] = None,
) -> None:
    """Import advisory, KEV and EPSS files into the database.

    Idempotent: importing the same data again changes nothing, and a record with a newer
    ``modified`` replaces the stored one. Each path is imported as a whole or not at all;
    malformed records are reported (file, id, field, reason) and skipped, and the exit code
    is 3 when anything was skipped.

    Example:

      patchwarden feeds import ./osv/pypi/vulns ./kev/known_exploited_vulnerabilities.json
    """
    if fmt is not None and fmt not in READERS:
        raise _fail(
            f"unknown format {fmt!r}; choose one of: {', '.join(sorted(READERS))}", Exit.USAGE
        )
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise _fail(f"no such file or directory: {', '.join(missing)}", Exit.USAGE)
    reader: FeedReader | None = None
    if release is not None:
        if fmt not in {None, DebianChangelogReader.name}:
            raise _fail(f"--release applies to --format debian-changelog, not {fmt}", Exit.USAGE)
        try:
            reader = DebianChangelogReader(release=release)
        except IntelError as exc:
            raise _fail(str(exc), Exit.USAGE) from exc
    with _store() as store, _observer() as obs:
        report = import_feeds(store, paths, fmt=fmt, observer=obs, reader=reader)
    _show_import(report, as_json)
    if report.partial:
        raise typer.Exit(int(Exit.PARTIAL))


def _import_json(report: ImportReport) -> dict[str, Any]:
    """The ``--json`` summary of an import (stable field names)."""
    return {
        "files": [
            {
                "path": f.path,
                "format": f.reader,
                "advisories": {
                    "inserted": f.advisories.inserted,
                    "updated": f.advisories.updated,
                    "unchanged": f.advisories.unchanged,
                },
                "kev_changed": f.kev,
                "epss_loaded": f.epss,
                "problems": [str(p) for p in f.problems],
                "error": f.error,
                "notes": f.notes,
            }
            for f in report.files
        ],
        "vulnerabilities": report.vulnerabilities,
        "partial": report.partial,
    }


def _show_import(report: ImportReport, as_json: bool) -> None:
    if as_json:
        _print_json(_import_json(report))
        return
    table = Table(title="feeds import")
    for col in ("path", "format", "new", "updated", "unchanged", "kev", "epss", "skipped"):
        table.add_column(col, justify="left" if col in {"path", "format"} else "right")
    for f in report.files:
        table.add_row(
            escape(f.path),
            f.reader or "-",
            str(f.advisories.inserted),
            str(f.advisories.updated),
            str(f.advisories.unchanged),
            str(f.kev),
            str(f.epss),
            f"[red]{len(f.problems)}[/]" if f.problems else "0",
        )
    out.print(table)
    for f in report.files:
        for note in f.notes:
            out.print(f"note: {escape(f.path)}: {escape(note)}")
        if f.error:
            err.print(f"[red]error:[/] {escape(f.error)} (nothing imported from this path)")
        for p in f.problems[:20]:
            err.print(f"[yellow]skipped:[/] {escape(str(p))}")
        if len(f.problems) > 20:
            err.print(f"[yellow]skipped:[/] ... and {len(f.problems) - 20} more in {f.path}")
    out.print(f"{report.vulnerabilities} vulnerabilities known")
    if report.partial:
        err.print("[yellow]partial import:[/] see the skipped records and errors above")


@feeds_app.command("list")
def feeds_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show what was imported last for each feed, and table counts.

    Example:

      patchwarden feeds list --json
    """
    with _store() as store:
        feeds = store.feeds()
        counts = store.counts()
    if as_json:
        _print_json({"feeds": feeds, "counts": counts})
        return
    table = Table(title="feeds")
    for col in ("feed", "version", "date", "records", "imported", "path"):
        table.add_column(col)
    for f in feeds:
        table.add_row(
            f["feed"],
            f["version"] or "-",
            f"{f['date']:%Y-%m-%d}" if f["date"] else "-",
            str(f["records"]),
            f"{f['imported_at']:%Y-%m-%d %H:%M}",
            escape(f["path"]),
        )
    out.print(table)
    out.print(", ".join(f"{k}: {v}" for k, v in counts.items()))


# --------------------------------------------------------------------------- scan


@app.command("scan")
def scan_cmd(
    fleet: Annotated[
        Path | None,
        typer.Option("--fleet", help="Fleet file (YAML) listing assets and their inventories."),
    ] = None,
    sbom: Annotated[
        list[Path] | None,
        typer.Option("--sbom", help="A CycloneDX or SPDX JSON SBOM (repeatable)."),
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Scan the machine patchwarden runs on.")
    ] = False,
    root: Annotated[
        list[Path] | None,
        typer.Option("--root", help="Scan a mounted image, chroot or snapshot (repeatable)."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Asset name for --local / --root / --sbom (one source)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=0,
            help="Processes that read the fleet's inventory files while the scan runs "
            "(default: one per CPU for fleets of 64 assets or more; 0: none).",
        ),
    ] = None,
) -> None:
    """Collect inventories and match them against the imported advisories.

    Findings are updated, never duplicated: a finding seen again keeps its first_seen, a
    finding no longer seen is marked resolved with the scan time. Identical packages across
    assets are matched once.

    A fleet is read by worker processes and scanned as it arrives. An asset whose inventory
    files (plain files: dpkg status, SBOM, lockfiles) have the same device, inode, size and
    times as when its stored inventory was collected is not read again, and an asset whose
    inventory and the advisories did not change is not matched again: a rescan costs what
    changed. An asset that cannot be read is reported and the rest is scanned (exit 3).

    Examples:

      patchwarden scan --fleet fleet.yaml

      patchwarden scan --local

      patchwarden scan --root /mnt/image --name web-image

      patchwarden scan --sbom bom.cdx.json --name payments-api
    """
    sboms, roots = sbom or [], root or []
    if not (fleet or sboms or local or roots):
        raise _fail("nothing to scan: give --fleet, --sbom, --root or --local", Exit.USAGE)
    if name and (len(sboms) + len(roots) + int(local)) > 1:
        raise _fail("--name applies to a single --local, --root or --sbom source", Exit.USAGE)
    inventories: list[Inventory] = []
    errors: list[str] = []
    if fleet and workers != 0:
        start_workers()  # its start-up overlaps loading the fleet file
    with _store() as store:
        try:  # a fleet file loaded before is not parsed again (the store keeps it)
            fleet_doc = load_fleet(fleet, cache=store) if fleet else None
        except FleetFileError as exc:
            raise _fail(str(exc), Exit.USAGE) from exc
        sources: list[tuple[str, Path, AssetKind]] = []
        if local:
            sources.append((name or socket.gethostname(), Path("/"), AssetKind.HOST))
        sources += [(name or (p.resolve().name or str(p)), p, AssetKind.IMAGE) for p in roots]
        for path, kind in [(p, AssetKind.SBOM) for p in sboms]:
            try:
                subject, packages = load_sbom(path)
            except (InventoryError, OSError) as exc:
                errors.append(f"sbom {str(path)!r}: {exc}")
                continue
            asset = Asset(id=AssetId(name or subject or path.stem), kind=kind)
            inventories.append(
                Inventory(asset=asset, packages=tuple(packages), source=f"sbom:{path}")
            )
        for asset_name, path, kind in sources:
            if not path.is_dir():
                errors.append(f"root {str(path)!r}: not a directory")
                continue
            try:
                inventories.append(scan_root(path, Asset(id=AssetId(asset_name), kind=kind)))
            except (InventoryError, OSError) as exc:
                errors.append(f"root {str(path)!r}: {exc}")
        names = [fa.asset.id for fa in fleet_doc.assets] if fleet_doc is not None else []
        dupes = duplicates([*names, *(inv.asset.id for inv in inventories)])
        if dupes:
            raise _fail(f"asset names given twice: {', '.join(dupes)} (use --name)", Exit.USAGE)
        with _observer() as obs:
            if store.counts()["advisories"] == 0:
                obs.note("no advisories imported yet: run `patchwarden feeds import` first")
            # ranked with the policy's weights; without a policy file, those of the stored ranking
            weights = _policy().risk if state.policy_path is not None else None
            if fleet_doc is not None:
                report = scan_fleet(
                    store,
                    fleet_doc,
                    workers=workers,
                    observer=obs,
                    weights=weights,
                    extra=[prepare_inventory(inv) for inv in inventories],
                )
            else:
                report = scan(store, inventories, observer=obs, weights=weights)
    report.errors.extend(errors)
    _show_scan(report, as_json)
    if report.errors:
        raise typer.Exit(int(Exit.PARTIAL))


_SCAN_ROWS = 50
"""Assets the scan table shows at most (``--json`` lists every one)."""


def _show_scan(report: ScanReport, as_json: bool) -> None:
    if as_json:
        _print_json(
            {
                "assets": [
                    {
                        "asset": a.asset,
                        "packages": a.packages,
                        "inventory_changed": a.changed,
                        "new": a.findings.new,
                        "still_open": a.findings.still_open,
                        "reopened": a.findings.reopened,
                        "resolved": a.findings.resolved,
                        "unsupported_packages": a.unsupported,
                    }
                    for a in report.assets
                ],
                "distinct_packages_matched": report.distinct_keys,
                "advisories_considered": report.advisories_considered,
                "skipped": [str(s) for s in report.skipped],
                "errors": report.errors,
            }
        )
        return
    shown = report.assets
    if len(shown) > _SCAN_ROWS:  # a fleet: the assets with the most open findings
        shown = sorted(
            report.assets,
            key=lambda a: -(a.findings.new + a.findings.still_open + a.findings.reopened),
        )[:_SCAN_ROWS]
    table = Table(title="scan")
    for col in ("asset", "packages", "new", "open", "reopened", "resolved"):
        table.add_column(col, justify="left" if col == "asset" else "right")
    for a in shown:
        table.add_row(
            escape(a.asset),
            str(a.packages),
            str(a.findings.new),
            str(a.findings.new + a.findings.still_open + a.findings.reopened),
            str(a.findings.reopened),
            str(a.findings.resolved),
        )
    out.print(table)
    if len(shown) < len(report.assets):
        counts = [a.findings for a in report.assets]
        out.print(
            f"{len(report.assets):,} assets ({len(shown)} with the most open findings shown; "
            "--json lists all): "
            f"{sum(c.new + c.still_open + c.reopened for c in counts):,} open findings, "
            f"{sum(c.new for c in counts):,} new, {sum(c.resolved for c in counts):,} resolved; "
            f"{sum(1 for a in report.assets if not a.matched):,} unchanged assets not matched "
            "again"
        )
    out.print(
        f"{report.distinct_keys} distinct packages matched once each against "
        f"{report.advisories_considered} relevant advisories"
    )
    if report.skipped:
        err.print(f"[yellow]note:[/] {len(report.skipped)} version comparisons were skipped:")
        for s in report.skipped[:10]:
            err.print(f"  {escape(str(s))}")
    for e in report.errors:
        err.print(f"[red]error:[/] {escape(e)}")


# --------------------------------------------------------------------------- findings


def finding_json(f: Finding) -> dict[str, Any]:
    """The stable JSON form of a finding (field names are a public interface)."""
    return {
        "id": f.id,
        "asset": f.asset,
        "ecosystem": f.ecosystem,
        "package": f.package,
        "binaries": list(f.binaries),
        "installed_version": f.installed_version,
        "vulnerability": f.vulnerability,
        "aliases": list(f.aliases),
        "advisories": list(f.advisories),
        "fix_state": f.fix_state.value,
        "fixed_version": f.fixed_version,
        "severity": f.severity.value,
        "cvss_score": f.cvss_score,
        "kev": f.kev,
        "epss": f.epss,
        "epss_percentile": f.epss_percentile,
        "first_seen": f.first_seen.isoformat(),
        "last_seen": f.last_seen.isoformat(),
        "resolved_at": None if f.resolved_at is None else f.resolved_at.isoformat(),
        "pending_restart": f.pending_restart,
    }


_SEVERITY_STYLE = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "green",
    Severity.NONE: "dim",
    Severity.UNKNOWN: "dim",
}


@app.command("findings")
def findings_cmd(
    asset: Annotated[
        list[str] | None, typer.Option("--asset", "-a", help="Only these assets (repeatable).")
    ] = None,
    package: Annotated[
        list[str] | None,
        typer.Option("--package", "-p", help="Only these packages (advisory names; repeatable)."),
    ] = None,
    severity: Annotated[
        Severity | None, typer.Option("--severity", "-s", help="Minimum severity.")
    ] = None,
    kev: Annotated[
        bool, typer.Option("--kev", help="Only CISA KEV-listed vulnerabilities.")
    ] = False,
    fix_state: Annotated[
        list[FixState] | None,
        typer.Option("--fix-state", help="Only these fix states (repeatable)."),
    ] = None,
    vulnerability: Annotated[
        str | None, typer.Option("--vulnerability", help="Only this vulnerability (any alias).")
    ] = None,
    include_resolved: Annotated[
        bool, typer.Option("--all", help="Include resolved findings.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    fail_on: Annotated[
        Severity | None,
        typer.Option(
            "--fail-on",
            help="Exit 1 when a listed finding has at least this severity (CI gate).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows in the table (0: all).")] = 50,
    show_suppressed: Annotated[
        bool,
        typer.Option("--show-suppressed", help="Include findings a VEX not_affected hides."),
    ] = False,
    sort: Annotated[
        SortOrder,
        typer.Option(
            "--sort",
            help="risk: the risk score (see `explain`); severity: KEV, severity, CVSS, EPSS.",
        ),
    ] = SortOrder.RISK,
    show_excepted: Annotated[
        bool,
        typer.Option(
            "--show-excepted", help="Include findings under a risk acceptance (`except`)."
        ),
    ] = False,
) -> None:
    """List open findings, most urgent first (by risk score unless --sort severity).

    Examples:

      patchwarden findings --severity high

      patchwarden findings --sort risk --limit 20

      patchwarden findings --kev --json > kev-findings.json

      patchwarden findings --asset web-01 --fail-on critical   # CI gate: exit 1 on critical
    """
    with _store() as store:
        vuln = vulnerability
        if vuln:
            with store.transaction() as conn:
                vuln = store.canonical_ids(conn, [vuln])[vuln]
        rows = store.findings(
            FindingFilter(
                assets=tuple(asset or ()),
                packages=tuple(package or ()),
                min_severity=severity,
                kev_only=kev,
                fix_states=tuple(fix_state or ()),
                include_resolved=include_resolved,
                vulnerability=vuln,
            )
        )
        hidden = vex_suppressions(store, rows)
        rows = [f for f in rows if show_suppressed or f.id not in hidden]
        accepted = in_force_acceptances(store)
        rows = [f for f in rows if show_excepted or f.id not in accepted]
        scored = score_findings(store, rows, _policy().risk)
    if sort is SortOrder.SEVERITY:
        order = {f.id: i for i, f in enumerate(rows)}
        scored.sort(key=lambda x: order[x.finding.id])
    if as_json:
        items = [scored_json(x) for x in scored]
        for item, x in zip(items, scored, strict=True):
            if x.finding.id in hidden:
                item["suppressed_by"] = statement_json(hidden[x.finding.id])
            if (a := accepted.get(x.finding.id)) is not None:
                item["accepted"] = {
                    "owner": a.owner,
                    "reason": a.reason,
                    "until": a.expires.isoformat(),
                }
        _print_json(items)
    else:
        _findings_table(scored, limit)
        for x in scored:
            if (s := hidden.get(x.finding.id)) is not None:
                out.print(
                    f"suppressed #{x.finding.id} {x.finding.vulnerability} by {escape(s.author)}"
                    f" ({escape(s.justification or s.impact_statement or '')}; {escape(s.key)})"
                )
    if fail_on is not None:
        hits = [f for f in rows if f.severity.rank >= fail_on.rank and f.resolved_at is None]
        if hits:
            err.print(
                f"[red]gate:[/] {len(hits)} open finding(s) at or above {fail_on.value}",
                highlight=False,
            )
            raise typer.Exit(int(Exit.GATE))


def scored_json(s: ScoredFinding) -> dict[str, Any]:
    """A finding's JSON with its risk score and SSVC decision."""
    return {
        **finding_json(s.finding),
        "risk_score": round(s.risk.score, 4),
        "ssvc": s.risk.ssvc.value,
    }


_SSVC_STYLE = {
    Decision.IMMEDIATE: "bold red",
    Decision.OUT_OF_CYCLE: "red",
    Decision.SCHEDULED: "yellow",
    Decision.DEFER: "dim",
}


def _findings_table(rows: list[ScoredFinding], limit: int) -> None:
    table = Table(title=f"{len(rows)} findings")
    for col in (
        "id",
        "asset",
        "package",
        "installed",
        "vulnerability",
        "risk",
        "ssvc",
        "severity",
        "kev",
        "epss",
        "fix",
    ):
        table.add_column(col, justify="right" if col in {"id", "risk", "epss"} else "left")
    for s in rows[: limit or None]:
        f = s.finding
        fix = f.fixed_version if f.fixed_version else f.fix_state.value.replace("_", " ")
        if f.pending_restart:
            fix = f"{fix} (installed; pending restart)"
        table.add_row(
            str(f.id),
            escape(f.asset),
            escape(f.package),
            escape(f.installed_version),
            escape(f.vulnerability),
            f"{s.risk.score:.2f}",
            f"[{_SSVC_STYLE[s.risk.ssvc]}]{s.risk.ssvc.value}[/]",
            f"[{_SEVERITY_STYLE[f.severity]}]{f.severity.value}[/]",
            "[bold red]KEV[/]" if f.kev else "",
            "" if f.epss is None else f"{f.epss:.3f}",
            escape(fix),
        )
    out.print(table)
    if limit and len(rows) > limit:
        out.print(f"... {len(rows) - limit} more (use --limit 0 or --json)")


# --------------------------------------------------------------------------- assets


# --------------------------------------------------------------------------- actions


def _scored_open(store: Store, assets: tuple[str, ...] = ()) -> list[ScoredFinding]:
    """Open findings to remediate: without VEX suppressions and risk acceptances in force."""
    return prioritised(store, _policy(), flt=FindingFilter(assets=assets)).active


def action_json(a: Action) -> dict[str, Any]:
    """The JSON form of an action."""
    return {
        "id": a.id,
        "asset": a.asset,
        "ecosystem": a.ecosystem,
        "package": a.package,
        "binaries": list(a.binaries),
        "installed_version": a.installed_version,
        "target_version": a.target_version,
        "risk_removed": round(a.risk_removed, 4),
        "ssvc": a.ssvc.value,
        "kev": a.kev,
        "closes": [
            {
                "finding": s.finding.id,
                "vulnerability": s.finding.vulnerability,
                "risk_score": round(s.risk.score, 4),
            }
            for s in a.closes
        ],
        "remaining": [
            {
                "finding": s.finding.id,
                "vulnerability": s.finding.vulnerability,
                "fix_state": s.finding.fix_state.value,
            }
            for s in a.remaining
        ],
    }


@app.command("actions")
def actions_cmd(
    asset: Annotated[
        list[str] | None, typer.Option("--asset", "-a", help="Only these assets (repeatable).")
    ] = None,
    by_package: Annotated[
        bool,
        typer.Option(
            "--by-package", help="Group the same upgrade across assets (fleet-wide view)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="Rows in the table (0: all).")] = 30,
) -> None:
    """Ranked upgrades: one action per package per asset, by the total risk it removes.

    The target is the smallest version that fixes every fixable finding of the package.

    Examples:

      patchwarden actions --limit 10

      patchwarden actions --by-package      # the same upgrade across the fleet

      patchwarden explain web-01/openssl    # why an action ranks where it does
    """
    with _store() as store:
        actions = plan_actions(_scored_open(store, tuple(asset or ())))
    if by_package:
        upgrades = fleet_upgrades(actions)
        if as_json:
            _print_json(
                [
                    {
                        "ecosystem": u.ecosystem,
                        "package": u.package,
                        "target_version": u.target_version,
                        "assets": list(u.assets),
                        "actions": [a.id for a in u.actions],
                        "vulnerabilities": list(u.vulnerabilities),
                        "risk_removed": round(u.risk_removed, 4),
                    }
                    for u in upgrades
                ]
            )
            return
        table = Table(title=f"{len(upgrades)} fleet-wide upgrades")
        for col in ("#", "ecosystem", "package", "target", "assets", "vulns", "risk removed"):
            table.add_column(col, justify="right" if col in {"#", "assets", "vulns"} else "left")
        for i, u in enumerate(upgrades[: limit or None], 1):
            table.add_row(
                str(i),
                escape(u.ecosystem),
                escape(u.package),
                escape(u.target_version),
                str(len(u.assets)),
                str(len(u.vulnerabilities)),
                f"{u.risk_removed:.2f}",
            )
        out.print(table)
        return
    if as_json:
        _print_json([action_json(a) for a in actions])
        return
    table = Table(title=f"{len(actions)} actions")
    for col in ("#", "action", "upgrade", "closes", "kev", "ssvc", "risk removed"):
        table.add_column(col, justify="right" if col in {"#", "closes", "risk removed"} else "left")
    for i, a in enumerate(actions[: limit or None], 1):
        table.add_row(
            str(i),
            escape(a.id),
            escape(f"{a.installed_version} -> {a.target_version}"),
            str(len(a.closes)) + (f" (+{len(a.remaining)} unfixed)" if a.remaining else ""),
            "[bold red]KEV[/]" if a.kev else "",
            f"[{_SSVC_STYLE[a.ssvc]}]{a.ssvc.value}[/]",
            f"{a.risk_removed:.2f}",
        )
    out.print(table)
    if limit and len(actions) > limit:
        out.print(f"... {len(actions) - limit} more (use --limit 0 or --json)")


def _risk_json(s: ScoredFinding) -> dict[str, Any]:
    r = s.risk
    return {
        "finding": scored_json(s),
        "score": r.score,
        "likelihood": r.likelihood,
        "impact": r.impact,
        "ssvc": {
            "decision": r.ssvc.value,
            "exploitation": r.ssvc_inputs.exploitation.value,
            "exposure": r.ssvc_inputs.exposure.value,
            "automatable": r.ssvc_inputs.automatable.value,
            "human_impact": r.ssvc_inputs.human_impact.value,
        },
        "factors": [
            {
                "name": f.name,
                "value": f.value,
                "source": f.source,
                "effect": f.effect,
                "share": f.share,
            }
            for f in r.factors
        ],
    }


def _print_risk(s: ScoredFinding) -> None:
    f, r = s.finding, s.risk
    out.print(
        f"finding {f.id}: {escape(f.vulnerability)} on {escape(f.asset)} "
        f"({escape(f.ecosystem)} {escape(f.package)} {escape(f.installed_version)})"
    )
    out.print(
        f"risk score {r.score:.3f} = 100 x likelihood {r.likelihood:.4f} x impact {r.impact:.4f}"
    )
    i = r.ssvc_inputs
    out.print(
        f"SSVC: [{_SSVC_STYLE[r.ssvc]}]{r.ssvc.value}[/] (exploitation {i.exploitation.value}, "
        f"exposure {i.exposure.value}, automatable {i.automatable.value}, "
        f"human impact {i.human_impact.value})"
    )
    table = Table()
    for col in ("factor", "value", "source", "effect", "share"):
        table.add_column(col, justify="right" if col in {"effect", "share"} else "left")
    for factor in r.factors:
        table.add_row(
            factor.name,
            escape(str(factor.value)),
            escape(factor.source),
            f"x{factor.effect:.4g}",
            f"{factor.share:.0%}",
        )
    out.print(table)


@app.command("explain")
def explain_cmd(
    target: Annotated[
        str,
        typer.Argument(
            metavar="FINDING-OR-ACTION",
            help="A finding id (the `id` column of `findings`) or an action id (asset/package).",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Explain a score: every factor, its value, its source and its share of the score.

    Share is each factor's part of the score's distance from 100 on a log scale
    (|ln effect| / sum of |ln effect|); see the README's risk model section.

    Examples:

      patchwarden explain 42

      patchwarden explain web-01/openssl --json
    """
    with _store() as store:
        if target.isdigit():
            scored = [s for s in _scored_open(store) if s.finding.id == int(target)]
            if not scored:
                resolved = store.findings(FindingFilter(include_resolved=True))
                scored = [
                    s
                    for s in score_findings(store, resolved, _policy().risk)
                    if s.finding.id == int(target)
                ]
            if not scored:
                raise _fail(f"no finding {target} (see `patchwarden findings`)", Exit.USAGE)
            if as_json:
                _print_json(_risk_json(scored[0]))
            else:
                _print_risk(scored[0])
            return
        asset_part = target.split("/", 1)[0]
        actions = plan_actions(_scored_open(store, (asset_part,)))
    action = next((a for a in actions if a.id == target), None)
    if action is None:
        known = ", ".join(a.id for a in actions[:5])
        raise _fail(
            f"no action {target!r}" + (f" (actions of {asset_part}: {known})" if known else ""),
            Exit.USAGE,
        )
    if as_json:
        _print_json({**action_json(action), "explained": [_risk_json(s) for s in action.closes]})
        return
    out.print(
        f"action {escape(action.id)}: upgrade {escape(action.ecosystem)} "
        f"{escape(action.package)} {escape(action.installed_version)} -> "
        f"{escape(action.target_version)} ({', '.join(action.binaries)})"
    )
    out.print(
        f"removes risk {action.risk_removed:.3f} by closing {len(action.closes)} finding(s); "
        f"SSVC {action.ssvc.value}"
    )
    table = Table()
    for col in ("finding", "vulnerability", "risk", "share of action", "ssvc", "fixed in"):
        table.add_column(col)
    for s in action.closes:
        share = s.risk.score / action.risk_removed if action.risk_removed else 0.0
        table.add_row(
            str(s.finding.id),
            escape(s.finding.vulnerability),
            f"{s.risk.score:.3f}",
            f"{share:.0%}",
            s.risk.ssvc.value,
            escape(s.finding.fixed_version or ""),
        )
    out.print(table)
    for s in action.remaining:
        out.print(
            f"stays open: {escape(s.finding.vulnerability)} "
            f"({s.finding.fix_state.value.replace('_', ' ')})"
        )
    out.print("\nthe highest-risk finding it closes:")
    _print_risk(action.closes[0])


assets_app = typer.Typer(
    help="Assets and their context (environment, criticality, exposure, tags, ...).",
    invoke_without_command=True,
)
app.add_typer(assets_app, name="assets")
app.add_typer(execute_app, name="execute")


@assets_app.callback()
def assets_cmd(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List assets with their context and open findings (``assets set`` edits one).

    Example:

      patchwarden assets --json
    """
    if ctx.invoked_subcommand is not None:
        return
    with _store() as store:
        rows = store.assets()
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"{len(rows)} assets")
    for col in ("asset", "kind", "env", "crit", "exposed", "distro", "packages", "open", "scanned"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            escape(r["id"]),
            r["kind"],
            r["environment"],
            str(r["criticality"]),
            "yes" if r["internet_exposed"] else "",
            r["distro"] or "",
            str(r["package_count"]),
            str(r["open"]),
            f"{r['last_scanned']:%Y-%m-%d %H:%M}" if r["last_scanned"] else "",
        )
    out.print(table)


@assets_app.command("set")
def assets_set(
    asset_id: Annotated[str, typer.Argument(metavar="ASSET", help="The asset to edit.")],
    environment: Annotated[
        Environment | None, typer.Option("--environment", "-e", help="prod, staging or dev.")
    ] = None,
    criticality: Annotated[
        int | None,
        typer.Option("--criticality", "-c", min=1, max=5, help="Business criticality 1-5."),
    ] = None,
    exposed: Annotated[
        bool | None,
        typer.Option("--exposed/--not-exposed", help="Reachable from the internet or not."),
    ] = None,
    data_sensitivity: Annotated[
        int | None,
        typer.Option("--data-sensitivity", "-d", min=1, max=5, help="Data sensitivity 1-5."),
    ] = None,
    service: Annotated[str | None, typer.Option("--service", help="Service membership.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Owning team or person.")] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Add a tag / compensating control, e.g. waf (repeatable)."),
    ] = None,
    untag: Annotated[
        list[str] | None, typer.Option("--untag", help="Remove a tag (repeatable).")
    ] = None,
    window: Annotated[str | None, typer.Option("--window", help="Maintenance window name.")] = None,
) -> None:
    """Edit an asset's context. A later `scan --fleet` sets it from the fleet file again.

    Example:

      patchwarden assets set web-01 --criticality 5 --exposed --tag waf
    """
    with _store() as store:
        current = store.get_asset(asset_id)
        if current is None:
            raise _fail(f"no asset {asset_id!r} (see `patchwarden assets`)", Exit.USAGE)
        tags = [x for x in current.tags if x not in set(untag or ())]
        tags += [x for x in tag or () if x not in tags]
        changes: dict[str, Any] = {"tags": tuple(tags)}
        for key, value in (
            ("environment", environment),
            ("criticality", criticality),
            ("internet_exposed", exposed),
            ("data_sensitivity", data_sensitivity),
            ("service", service),
            ("owner", owner),
            ("maintenance_window", window),
        ):
            if value is not None:
                changes[key] = value
        updated = replace(current, **changes)
        with store.transaction() as conn:
            store.update_asset(updated, conn=conn)
            record_asset_update(conn, current, updated)
    out.print(
        f"{escape(updated.id)}: {updated.environment.value}, criticality {updated.criticality}, "
        f"{'internet-exposed' if updated.internet_exposed else 'not exposed'}, "
        f"data sensitivity {updated.data_sensitivity}, tags: {', '.join(updated.tags) or '-'}"
    )


def run() -> None:
    """Console-script entry point: no traceback ever reaches the user."""
    try:
        app()
    except PatchwardenError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        sys.exit(int(Exit.USAGE))
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        os._exit(0)


from patchwarden.cli.serve_cmd import serve_cmd, users_app  # noqa: E402

app.command("serve")(serve_cmd)
app.add_typer(users_app, name="users")

# Commands defined in their own modules register themselves on `app` when imported; they use
# the helpers above, so they are imported last. Add a new command module's name here.
for _module in ("changelog_cmd", "daemon_cmd", "learn_cmd", "plan_cmd", "rollout_cmd"):
    importlib.import_module(f"patchwarden.cli.{_module}")
