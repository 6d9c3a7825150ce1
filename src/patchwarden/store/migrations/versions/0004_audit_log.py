"""audit_log and audit_head: the hash-chained audit trail

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 08:00:00

Issue 6 section 1: every state change is appended to a hash chain that
``patchwarden audit verify`` checks (see :mod:`patchwarden.audit`). ``audit_head`` starts
with one row at seq 0 and the genesis hash.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import patchwarden.store.schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", patchwarden.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("inputs_digest", sa.String(length=64), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_hash", "audit_log", ["hash"], unique=False)
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index("ix_audit_log_hash", table_name="audit_log")
    op.drop_table("audit_log")
