"""fleet cache and advisory state: fleet files parsed before, and the advisory digest

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 09:10:00

Issue 8: parsing a 10,000-asset YAML fleet file takes about 2 s, a third of a rescan where 1%
of the hosts changed. A fleet file loaded without problems is kept here as JSON (its data
and asset lines) under the SHA-256 of its bytes; loading the same file again validates the
kept data without parsing the YAML (see ``patchwarden.inventory.fleet.load_fleet``).

Every scan started by reading the whole advisory set (36,000 advisories, 80,000 alias rows:
0.3 s, a tenth of such a rescan) to digest it. The digest is now kept in ``advisory_state``
with a fingerprint of the tables it covers; imports clear it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import patchwarden.store.schema

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_cache",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("saved_at", patchwarden.store.schema.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_fleet_cache")),
    )


    op.create_table(
        "advisory_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.Column("fingerprint", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advisory_state")),
    )


def downgrade() -> None:
    op.drop_table("advisory_state")
    op.drop_table("fleet_cache")
