"""``patchwarden serve`` (API + dashboard) and ``patchwarden users`` (accounts and tokens)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from patchwarden import auth
from patchwarden.auth import Role
from patchwarden.errors import GovernError, NotFound

PASSWORD_ENV = "PATCHWARDEN_PASSWORD"
"""Where ``users add --password-env`` reads a password from (never from the command line)."""

users_app = typer.Typer(
    help=(
        "Users and API tokens of `patchwarden serve` (roles viewer < operator < approver < "
        "admin). Managing them is audited; the actor is $PATCHWARDEN_ACTOR or the OS user."
        "\n\nExample:\n\n  patchwarden users add alice --role approver --password-prompt"
        "\n\n  patchwarden users token alice --name ci"
    ),
    no_args_is_help=True,
)


def serve_cmd(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="TCP port.")] = 8080,
    secure_cookies: Annotated[
        bool,
        typer.Option("--secure-cookies", help="Mark the session cookie Secure (behind HTTPS)."),
    ] = False,
) -> None:
    """Serve the REST API (/api, OpenAPI at /api/docs) and the dashboard (/).

    Create an admin first: `patchwarden users add admin --role admin --password-prompt`.

    Example:

      patchwarden serve --port 8080
    """
    import uvicorn

    from patchwarden.api import create_app
    from patchwarden.cli import main as cli

    policy = cli._policy()
    with cli._store():  # fail early, with exit code 4, when the database cannot be opened
        pass
    app = create_app(cli.state.db, policy, secure_cookies=secure_cookies)
    if not cli.state.quiet:
        cli.err.print(f"serving on http://{host}:{port}/ (API docs: /api/docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning" if cli.state.quiet else "info")


def _actor() -> str:
    from patchwarden.audit import default_actor

    return default_actor()


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[Role, typer.Option("--role", help="viewer, operator, approver or admin.")],
    password_prompt: Annotated[
        bool, typer.Option("--password-prompt", help="Ask for a password (hidden).")
    ] = False,
    password_env: Annotated[
        bool, typer.Option("--password-env", help=f"Read the password from ${PASSWORD_ENV}.")
    ] = False,
) -> None:
    """Create a user (without a password it logs in with API tokens only)."""
    from patchwarden.cli import main as cli

    password: str | None = None
    if password_env:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            raise cli._fail(f"--password-env: ${PASSWORD_ENV} is not set", cli.Exit.USAGE)
    elif password_prompt:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with cli._store() as store:
        try:
            user = auth.create_user(store, name, role, actor=_actor(), password=password)
        except GovernError as exc:
            raise cli._fail(str(exc), cli.Exit.USAGE) from exc
    cli.out.print(f"created user {escape(user.name)} ({user.role.value})")


@users_app.command("list")
def users_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List users and their roles."""
    from patchwarden.cli import main as cli

    with cli._store() as store:
        rows = auth.users(store)
    if as_json:
        cli._print_json(
            [
                {
                    "name": u.name,
                    "role": u.role.value,
                    "disabled": u.disabled,
                    "created_at": u.created_at.isoformat(),
                    "created_by": u.created_by,
                }
                for u in rows
            ]
        )
        return
    table = Table()
    for col in ("name", "role", "disabled", "created", "by"):
        table.add_column(col)
    for u in rows:
        table.add_row(
            escape(u.name),
            u.role.value,
            "yes" if u.disabled else "",
            u.created_at.isoformat(timespec="seconds"),
            escape(u.created_by),
        )
    cli.out.print(table)


@users_app.command("token")
def users_token(
    name: Annotated[str, typer.Argument(help="The user the token acts as.")],
    label: Annotated[str, typer.Option("--name", help="What the token is for.")] = "api",
    days: Annotated[
        int | None, typer.Option("--days", min=1, help="Expire after this many days.")
    ] = None,
) -> None:
    """Create an API token; it is printed once (only its hash is stored)."""
    from patchwarden.cli import main as cli

    expires = None if days is None else dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    with cli._store() as store:
        try:
            info, secret = auth.create_token(
                store, name, actor=_actor(), name=label, expires_at=expires
            )
        except (GovernError, NotFound) as exc:
            raise cli._fail(str(exc), cli.Exit.USAGE) from exc
    if not cli.state.quiet:
        cli.err.print(f"token {info.id} for {escape(name)} (shown once; keep it secret):")
    print(secret)


@users_app.command("revoke-token")
def users_revoke_token(
    token_id: Annotated[str, typer.Argument(help="The token id (`users tokens`).")],
) -> None:
    """Revoke an API token."""
    from patchwarden.cli import main as cli

    with cli._store() as store:
        try:
            auth.revoke_token(store, token_id, actor=_actor())
        except (GovernError, NotFound) as exc:
            raise cli._fail(str(exc), cli.Exit.USAGE) from exc
    cli.out.print(f"revoked token {escape(token_id)}")


@users_app.command("tokens")
def users_tokens(
    name: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
) -> None:
    """List API tokens (never their secrets)."""
    from patchwarden.cli import main as cli

    with cli._store() as store:
        rows = auth.tokens(store, user_name=name)
    table = Table()
    for col in ("id", "user", "name", "created", "expires", "revoked"):
        table.add_column(col)
    for i in rows:
        table.add_row(
            i.id,
            escape(i.user),
            escape(i.name),
            i.created_at.isoformat(timespec="seconds"),
            "" if i.expires_at is None else i.expires_at.isoformat(timespec="seconds"),
            "" if i.revoked_at is None else i.revoked_at.isoformat(timespec="seconds"),
        )
    cli.out.print(table)
