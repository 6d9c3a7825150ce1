"""source signature: what a fleet scan read each asset's inventory from, to skip unchanged sources

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 07:00:00

Issue 8: a fleet rescan re-read every host's package database (4.4 GB of dpkg status files
for 10,000 hosts) to find that 99% of them had not changed. An asset now keeps the signature
of the files its inventory was collected from (device, inode, size, modification and change
times, and the collectors' code) and how many of its packages had no version ordering; a
fleet scan whose files have the same signature reuses the stored inventory without reading
them. Existing assets start without a signature (their files are read once more).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("assets", sa.Column("source_signature", sa.String(length=64), nullable=True))
    op.add_column("assets", sa.Column("unsupported_count", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("unsupported_count")
        batch.drop_column("source_signature")
