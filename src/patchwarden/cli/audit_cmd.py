"""``patchwarden audit``: verify, export and read the hash-chained audit trail.

Exit code 5 (:data:`TAMPERED`) means ``audit verify`` found tampering; see
:mod:`patchwarden.audit` for what is hashed and what can be detected.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import Connection

from patchwarden import audit
from patchwarden.model import Asset

TAMPERED = 5
"""Exit code of ``audit verify`` when the chain does not verify."""

audit_app = typer.Typer(
    help=(
        "The tamper-evident audit trail: every state change (feed import, scan, asset edit, "
        "plan, approval, rollout step, ...) with actor, time, subject and a digest of its "
        "inputs, hash-chained (HMAC with $PATCHWARDEN_AUDIT_KEY)."
        "\n\nExample:\n\n  patchwarden audit verify"
        "\n\n  patchwarden audit export --out audit.jsonl"
        "\n\n  patchwarden audit log --limit 20"
    ),
    no_args_is_help=True,
)


def _since(value: str | None) -> dt.datetime | None:
    from patchwarden.cli import main as cli

    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise cli._fail(
            f"--since: not an ISO 8601 date or time: {value!r} (e.g. 2026-01-31 or "
            "2026-01-31T08:00:00Z)",
            cli.Exit.USAGE,
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@audit_app.command("verify")
def verify_cmd(
    expect_head: Annotated[
        str | None,
        typer.Option(
            "--expect-head",
            help="An earlier head (SEQ:HASH, as printed by `audit verify` or the last line of "
            "`audit export`) that must still be in the chain: detects a truncated tail.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Check every entry's hash and link; name the first bad entry (exit 5) or print the head.

    Uses the HMAC key in $PATCHWARDEN_AUDIT_KEY when set. Keep the printed head somewhere
    outside the database and pass it to --expect-head later: without such an anchor, removing
    the newest entries together with the head record cannot be detected.

    Example:

      patchwarden audit verify --expect-head 1234:5f1c...
    """
    from patchwarden.cli import main as cli

    if expect_head is not None:
        try:
            audit.parse_anchor(expect_head)
        except ValueError as exc:
            raise cli._fail(f"--expect-head: {exc}", cli.Exit.USAGE) from exc
    with cli._store() as store:
        result = audit.verify(store, expect_head=expect_head)
    if as_json:
        cli._print_json(result.to_json())
    elif result.ok:
        cli.out.print(
            f"ok: {result.checked} entries verified; head {result.head_seq}:{result.head_hash}"
        )
    else:
        cli.err.print(
            f"[red]tampered:[/] {escape(result.message)} "
            f"(reason {result.reason}; {result.checked} entries verified before it)"
        )
    if not result.ok:
        raise typer.Exit(TAMPERED)


@audit_app.command("export")
def export_cmd(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write to this file (default: stdout).", show_default=False
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only entries at or after this UTC date/time (ISO 8601)."),
    ] = None,
    after: Annotated[
        int | None,
        typer.Option("--after", min=0, help="Only entries with a seq greater than this."),
    ] = None,
) -> None:
    """Write entries as JSON lines, oldest first; the last line carries the head (seq, hash).

    Example:

      patchwarden audit export --since 2026-01-01 --out audit-2026.jsonl
    """
    from patchwarden.cli import main as cli

    start = _since(since)
    with cli._store() as store:
        if out is None:
            count = audit.export(store, sys.stdout, since=start, after_seq=after)
        else:
            try:
                fh: TextIO
                with out.open("w", encoding="utf-8") as fh:
                    count = audit.export(store, fh, since=start, after_seq=after)
            except OSError as exc:
                raise cli._fail(f"cannot write {out}: {exc.strerror}", cli.Exit.USAGE) from exc
    if out is not None and not cli.state.quiet:
        cli.err.print(f"wrote {count} entries to {escape(str(out))}")


@audit_app.command("log")
def log_cmd(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many entries.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Show the newest entries, newest first (not a verification: see `audit verify`).

    Example:

      patchwarden audit log --limit 20
    """
    from patchwarden.cli import main as cli

    with cli._store() as store:
        rows = audit.recent(store, limit)
    if as_json:
        cli._print_json([e.to_json() for e in rows])
        return
    table = Table(title=f"last {len(rows)} audit entries")
    for col in ("seq", "at (UTC)", "actor", "action", "subject", "details"):
        table.add_column(col)
    for e in rows:
        details = json.loads(e.details)
        table.add_row(
            str(e.seq),
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            escape(e.actor),
            escape(e.action),
            escape(e.subject),
            escape(_short(details)),
        )
    cli.out.print(table)


def _short(details: object, width: int = 80) -> str:
    """Details as one line, cut at ``width`` characters.

    >>> _short({"new": 5, "old": 3})
    'new=5 old=3'
    >>> _short({"a": "x" * 100}, 10)
    'a=xxxxxxx…'
    """
    if isinstance(details, dict):
        text = " ".join(
            f"{k}={v if isinstance(v, str | int | float) else json.dumps(v, sort_keys=True)}"
            for k, v in details.items()
        )
    else:
        text = json.dumps(details)
    return text if len(text) <= width else text[: width - 1] + "…"


def record_asset_update(conn: Connection, old: Asset, new: Asset) -> None:
    """Append an ``asset.update`` entry with the old and new values of the changed fields.

    Runs on ``conn``, in the same transaction as :meth:`Store.update_asset`; nothing is
    appended when nothing changed.
    """
    fields = [f.name for f in dataclasses.fields(Asset) if f.name != "id"]
    changed = [n for n in fields if getattr(old, n) != getattr(new, n)]
    if not changed:
        return
    audit.append(
        conn,
        actor=audit.default_actor(),
        action=audit.Action.ASSET_UPDATE,
        subject=new.id,
        inputs={"asset": new.id, "new": {n: getattr(new, n) for n in fields}},
        details={
            "old": {n: getattr(old, n) for n in changed},
            "new": {n: getattr(new, n) for n in changed},
        },
    )
