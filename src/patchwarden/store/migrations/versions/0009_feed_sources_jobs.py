"""feed_sources and jobs: live feed sync state and the daemon's job queue

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 09:00:00

Issue 7 sections 3 and 4: ``feed_sources`` keeps per download source the validators of the
last imported copy (ETag, Last-Modified, sha256) and the last outcome; ``jobs`` is the
daemon's queue (one row per step of a scheduled cycle, claimed under a lease).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import patchwarden.store.schema

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = patchwarden.store.schema.UtcDateTime
    op.create_table(
        "feed_sources",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("checked_at", utc(), nullable=True),
        sa.Column("synced_at", utc(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_feed_sources")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("cycle", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("after", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=255), nullable=True),
        sa.Column("lease_expires", utc(), nullable=True),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("started_at", utc(), nullable=True),
        sa.Column("finished_at", utc(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_state", "jobs", ["state", "seq"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jobs_state", table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("feed_sources")
