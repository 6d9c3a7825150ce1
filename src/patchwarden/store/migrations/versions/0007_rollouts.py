"""rollouts: rollout runs, their steps, host connections and pending restarts

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 08:00:00

Issue 5 section 2: ``rollouts`` (one run of a plan), ``rollout_steps`` (every step, written
before and after it runs, so that ``rollout resume`` continues where a crash stopped),
``rollout_hosts`` (the fleet file's ``connection:`` blocks) and ``pending_restarts``
(findings fixed on disk whose old code still runs).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import patchwarden.store.schema

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = patchwarden.store.schema.UtcDateTime
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("backend", sa.String(length=32), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("started_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.Column("finished_at", utc(), nullable=True),
        sa.Column("runner", sa.String(length=255), nullable=True),
        sa.Column("halt_reason", sa.Text(), nullable=True),
        sa.Column("simulated", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_rollouts_plan_id_plans"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
    )
    op.create_index("ix_rollouts_plan", "rollouts", ["plan_id"], unique=False)
    op.create_table(
        "rollout_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("change_id", sa.String(length=64), nullable=False),
        sa.Column("asset_id", sa.String(length=255), nullable=False),
        sa.Column("ring", sa.String(length=32), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("started_at", utc(), nullable=True),
        sa.Column("finished_at", utc(), nullable=True),
        sa.ForeignKeyConstraint(
            ["rollout_id"],
            ["rollouts.id"],
            name=op.f("fk_rollout_steps_rollout_id_rollouts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_steps")),
        sa.UniqueConstraint(
            "rollout_id",
            "change_id",
            "step",
            name=op.f("uq_rollout_steps_rollout_id_change_id_step"),
        ),
    )
    op.create_index(
        "ix_rollout_steps_rollout", "rollout_steps", ["rollout_id", "change_id"], unique=False
    )
    op.create_table(
        "rollout_hosts",
        sa.Column("asset_id", sa.String(length=255), nullable=False),
        sa.Column("connection", sa.JSON(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("asset_id", name=op.f("pk_rollout_hosts")),
    )
    op.create_table(
        "pending_restarts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("finding_id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.String(length=255), nullable=False),
        sa.Column("rollout_id", sa.Integer(), nullable=True),
        sa.Column("units", sa.JSON(), nullable=False),
        sa.Column("reboot", sa.Boolean(), nullable=False),
        sa.Column("since", utc(), nullable=False),
        sa.Column("cleared_at", utc(), nullable=True),
        sa.ForeignKeyConstraint(
            ["finding_id"],
            ["findings.id"],
            name=op.f("fk_pending_restarts_finding_id_findings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_restarts")),
    )
    op.create_index(
        "ix_pending_restarts_finding",
        "pending_restarts",
        ["finding_id", "cleared_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_pending_restarts_finding", table_name="pending_restarts")
    op.drop_table("pending_restarts")
    op.drop_table("rollout_hosts")
    op.drop_index("ix_rollout_steps_rollout", table_name="rollout_steps")
    op.drop_table("rollout_steps")
    op.drop_index("ix_rollouts_plan", table_name="rollouts")
    op.drop_table("rollouts")
