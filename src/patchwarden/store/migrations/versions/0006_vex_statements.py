"""vex_statements: imported VEX statements that suppress findings

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 08:00:00

Issue 9: OpenVEX / CycloneDX VEX / CSAF VEX statements, one row each, keyed by
``<document>#<index>``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import patchwarden.store.schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vex_statements",
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("document", sa.String(length=512), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("vulnerability", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("imported_at", patchwarden.store.schema.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_vex_statements")),
    )
    op.create_index(
        op.f("ix_vex_statements_document"), "vex_statements", ["document"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_vex_statements_document"), table_name="vex_statements")
    op.drop_table("vex_statements")
