"""assets.advisory_digest: the advisory set an asset was last matched against

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 07:10:00

A rescan skips matching and findings sync for an asset whose inventory digest and advisory
digest are both unchanged (incremental scanning, issue 8).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.add_column(sa.Column("advisory_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("advisory_digest")
