"""learn_models: fitted patch-failure models

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 12:00:00

Issue 6 section 2: the patch-failure model is refitted after every rollout; each fit is a row
with its training time, trigger, outcome counts, a digest of the training data and the fitted
parameters.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import patchwarden.store.schema

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "learn_models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trained_at", patchwarden.store.schema.UtcDateTime(), nullable=False),
        sa.Column("trigger", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("data_digest", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_learn_models")),
    )


def downgrade() -> None:
    op.drop_table("learn_models")
