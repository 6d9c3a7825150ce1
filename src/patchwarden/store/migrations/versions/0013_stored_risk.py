"""stored risk: findings.risk and findings.ssvc, and the basis they were computed with

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 12:40:00

Issue 8: ranking a fleet re-read and re-scored all of its findings after every scan (617,078
for 10,000 hosts), so a rescan where 1% of the hosts changed could not cost 10% of a full
scan. Each finding now keeps its risk score and SSVC decision rank, computed when the scan
writes it, under the basis (weights and intel digest) in ``risk_state``. Existing findings
start unscored (NULL) and are scored by the next scan or ranking.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("findings", sa.Column("risk", sa.Float(), nullable=True))
    op.add_column("findings", sa.Column("ssvc", sa.SmallInteger(), nullable=True))
    op.create_table(
        "risk_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("basis", sa.String(length=64), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_state")),
    )


def downgrade() -> None:
    op.drop_table("risk_state")
    with op.batch_alter_table("findings") as batch:
        batch.drop_column("ssvc")
        batch.drop_column("risk")
