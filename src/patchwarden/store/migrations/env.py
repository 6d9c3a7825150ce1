"""Alembic environment: migrations run on the connection patchwarden hands in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from patchwarden.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # the `alembic` command line, e.g. `alembic revision --autogenerate`
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.connect() as conn:
        context.configure(
            connection=conn,
            target_metadata=metadata,
            render_as_batch=conn.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
