"""``patchwarden report``: the remediation report (HTML/CSV/JSON) and the evidence export."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

report_app = typer.Typer(
    help=(
        "Remediation metrics (time-to-patch with Kaplan-Meier, exposure-days, SLA "
        "compliance, rollout rates, risk burn-down) as a self-contained HTML report plus "
        "CSV/JSON, and the compliance evidence export."
        "\n\nExample:\n\n  patchwarden report --out ./report"
        "\n\n  patchwarden report evidence --out evidence.csv"
    ),
    invoke_without_command=True,
)


class EvidenceFormat(StrEnum):
    """Evidence export formats."""

    CSV = "csv"
    JSON = "json"


def _now(value: str | None) -> dt.datetime:
    from patchwarden.cli import main as cli

    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise cli._fail(
            f"--now: not an ISO 8601 time: {value!r} (e.g. 2025-06-30T00:00:00Z)", cli.Exit.USAGE
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


_NOW_HELP = "Report as of this UTC time (ISO 8601; default: now)."


@report_app.callback()
def report(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (created).", show_default=False),
    ] = None,
    formats: Annotated[
        str, typer.Option("--format", "-f", help="Comma-separated: html, csv, json.")
    ] = "html,csv,json",
    horizon: Annotated[
        float,
        typer.Option("--horizon", help="Restricted-mean horizon in days.", min=1.0),
    ] = 365.0,
    now: Annotated[str | None, typer.Option("--now", help=_NOW_HELP, show_default=False)] = None,
) -> None:
    """Write the remediation report into --out (report.html, report.json, *.csv)."""
    if ctx.invoked_subcommand is not None:
        return
    from patchwarden.cli import main as cli
    from patchwarden.report.data import collect
    from patchwarden.report.html import Format, build_report, write_report

    if out is None:
        raise cli._fail("missing --out DIR (where the report goes)", cli.Exit.USAGE)
    wanted: list[Format] = []
    for part in (p.strip() for p in formats.split(",")):
        try:
            wanted.append(Format(part))
        except ValueError as exc:
            choices = ", ".join(f.value for f in Format)
            raise cli._fail(
                f"--format: unknown format {part!r}; choose from: {choices}", cli.Exit.USAGE
            ) from exc
    policy = cli._policy()
    when = _now(now)
    with cli._store() as store:
        data = collect(store, when, sla=policy.plan.slas, weights=policy.risk)
    try:
        written = write_report(build_report(data, horizon_days=horizon), out, wanted)
    except ValueError as exc:
        raise cli._fail(str(exc), cli.Exit.USAGE) from exc
    except OSError as exc:
        raise cli._fail(f"cannot write report to {out}: {exc}", cli.Exit.USAGE) from exc
    for path in written:
        cli.out.print(escape(str(path)))


@report_app.command("evidence")
def evidence(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file (.csv or .json).")],
    fmt: Annotated[
        EvidenceFormat | None,
        typer.Option("--format", "-f", help="Default: from the file suffix, else csv."),
    ] = None,
    now: Annotated[str | None, typer.Option("--now", help=_NOW_HELP, show_default=False)] = None,
) -> None:
    """Export each finding's timeline (found, scored, planned, approved by, patched, verified)
    for auditors (SOC 2 change management, PCI DSS 6.3.3)."""
    from patchwarden.cli import main as cli
    from patchwarden.report.data import collect
    from patchwarden.report.evidence import evidence_rows, write_csv, write_json

    chosen = fmt or (EvidenceFormat.JSON if out.suffix.lower() == ".json" else EvidenceFormat.CSV)
    policy = cli._policy()
    when = _now(now)
    with cli._store() as store:
        data = collect(store, when, sla=policy.plan.slas, weights=policy.risk)
    rows = evidence_rows(data)
    try:
        if out.parent != Path():
            out.parent.mkdir(parents=True, exist_ok=True)
        if chosen is EvidenceFormat.JSON:
            write_json(rows, out, now=when)
        else:
            write_csv(rows, out)
    except (ValueError, OSError) as exc:
        raise cli._fail(f"cannot write evidence to {out}: {exc}", cli.Exit.USAGE) from exc
    cli.out.print(f"{len(rows)} findings -> {escape(str(out))}")
