"""match_cache: match results per package key, reused while advisories and code are the same

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 12:00:00

Issue 8: a rescan where 1% of 10,000 hosts changed re-matched every key of the changed hosts
(3,200 keys, loading and compiling 5,300 advisories) although an earlier scan had matched
them against the same advisories. Results are now kept per key under a digest of the
advisory set and the matching code.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "match_cache",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=1024), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("digest", "key", name=op.f("pk_match_cache")),
    )


def downgrade() -> None:
    op.drop_table("match_cache")
