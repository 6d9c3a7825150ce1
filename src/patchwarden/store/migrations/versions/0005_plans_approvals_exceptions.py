"""plans, changes, approvals and risk acceptances (exceptions)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 07:30:00

Issue 4: a plan's changes with their slots, rings, gates and SLA; every approval decision
(who, when, why); exceptions on findings with owner, reason and expiry.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import patchwarden.store.schema

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UTC = patchwarden.store.schema.UtcDateTime


def upgrade() -> None:
    op.create_table(
        "risk_acceptances",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("finding_id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("expires_at", UTC(timezone=True), nullable=False),
        sa.Column("revoked_at", UTC(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=255), nullable=True),
        sa.Column("expiry_recorded_at", UTC(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["finding_id"],
            ["findings.id"],
            name=op.f("fk_risk_acceptances_finding_id_findings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_acceptances")),
    )
    op.create_index("ix_risk_acceptances_finding", "risk_acceptances", ["finding_id"])
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("policy_digest", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("unscheduled", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
    )
    op.create_table(
        "changes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.String(length=255), nullable=False),
        sa.Column("slot_start", UTC(timezone=True), nullable=True),
        sa.Column("slot_end", UTC(timezone=True), nullable=True),
        sa.Column("ring", sa.String(length=32), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("gate", sa.String(length=32), nullable=False),
        sa.Column("gate_rule", sa.Text(), nullable=False),
        sa.Column("sla_deadline", UTC(timezone=True), nullable=True),
        sa.Column("breach", sa.Boolean(), nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("disruption", sa.String(length=16), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_changes_plan_id_plans"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changes")),
    )
    op.create_index("ix_changes_plan", "changes", ["plan_id"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("change_id", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["changes.id"],
            name=op.f("fk_approvals_change_id_changes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
    )
    op.create_index("ix_approvals_change", "approvals", ["change_id"])


def downgrade() -> None:
    op.drop_table("approvals")
    op.drop_table("changes")
    op.drop_table("plans")
    op.drop_table("risk_acceptances")
