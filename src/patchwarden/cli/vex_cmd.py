"""``patchwarden vex``: import VEX documents, withdraw them, list and export statements."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from patchwarden.errors import NotFound
from patchwarden.vex import VexError, VexFormat, VexStatement

vex_app = typer.Typer(
    help=(
        "VEX statements (OpenVEX, CycloneDX VEX, CSAF VEX): a not_affected statement "
        "suppresses the findings it covers (see `findings --show-suppressed`)."
        "\n\nExample:\n\n  patchwarden vex import ./vendor.openvex.json"
        "\n\n  patchwarden vex export --format cyclonedx > fleet.vex.json"
    ),
    no_args_is_help=True,
)


def statement_json(s: VexStatement) -> dict[str, Any]:
    """A statement as printed by ``--json`` and ``findings --show-suppressed --json``."""
    return {
        "key": s.key,
        "document": s.document,
        "source": s.source,
        "format": s.format.value,
        "vulnerability": s.vulnerability,
        "aliases": list(s.aliases),
        "products": list(s.products),
        "status": s.status.value,
        "justification": s.justification,
        "impact_statement": s.impact_statement,
        "action_statement": s.action_statement,
        "author": s.author,
        "timestamp": s.timestamp.isoformat() if s.timestamp else None,
    }


@vex_app.command("import")
def vex_import(
    paths: Annotated[list[Path], typer.Argument(help="OpenVEX, CycloneDX VEX or CSAF files.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Import VEX documents; re-importing a document replaces its statements."""
    from patchwarden.cli import main as cli
    from patchwarden.vex.service import import_vex

    with cli._store() as store:
        try:
            done = import_vex(store, paths)
        except VexError as exc:
            raise cli._fail(str(exc), cli.Exit.USAGE) from exc
    if as_json:
        cli._print_json([vars(d) for d in done])
        return
    for d in done:
        cli.out.print(
            f"{escape(d.path)}: document {escape(d.document)}: {d.statements} statement(s), "
            f"{d.dropped} withdrawn, {len(d.suppressed)} finding(s) newly suppressed"
        )


@vex_app.command("withdraw")
def vex_withdraw(
    target: Annotated[str, typer.Argument(help="A document id or a statement key.")],
) -> None:
    """Withdraw a document or one statement; the findings it suppressed come back."""
    from patchwarden.cli import main as cli
    from patchwarden.vex.service import withdraw

    with cli._store() as store:
        try:
            keys, released = withdraw(store, target)
        except NotFound as exc:
            raise cli._fail(str(exc), cli.Exit.USAGE) from exc
    cli.out.print(f"withdrew {len(keys)} statement(s); {len(released)} finding(s) visible again")


@vex_app.command("list")
def vex_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """List the stored statements."""
    from patchwarden.cli import main as cli
    from patchwarden.vex.service import statements

    with cli._store() as store:
        rows = statements(store)
    if as_json:
        cli._print_json([statement_json(s) for s in rows])
        return
    table = Table(title=f"{len(rows)} vex statements")
    for col in ("key", "vulnerability", "status", "justification", "author", "products"):
        table.add_column(col)
    for s in rows:
        table.add_row(
            escape(s.key),
            s.vulnerability,
            s.status.value,
            escape(s.justification or s.impact_statement or ""),
            escape(s.author),
            escape(", ".join(s.products)),
        )
    cli.out.print(table)


@vex_app.command("export")
def vex_export(
    fmt: Annotated[
        VexFormat, typer.Option("--format", help="openvex or cyclonedx.")
    ] = VexFormat.OPENVEX,
    author: Annotated[str, typer.Option("--author", help="The document's author.")] = "patchwarden",
) -> None:
    """Write the fleet's current status (every open finding) as a VEX document on stdout."""
    from patchwarden.cli import main as cli
    from patchwarden.vex.service import export

    if fmt is VexFormat.CSAF:
        raise cli._fail("vex export writes openvex or cyclonedx, not csaf", cli.Exit.USAGE)
    with cli._store() as store:
        sys.stdout.write(export(store, fmt, author=author) + "\n")
