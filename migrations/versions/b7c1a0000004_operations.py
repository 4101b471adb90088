"""operations: backups and readiness (issue 19)

Reserved in the migration chain so that work on several issues can land in any order. The one
table: ``ops_heartbeats``, a row per app host that /readyz updates to prove the database still
takes writes (a full disk, a read-only failover).

Revision ID: b7c1a0000004
Revises: b7c1a0000003
Create Date: 2026-11-30 07:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "b7c1a0000004"
down_revision = "b7c1a0000003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "ops_heartbeats",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_ops_heartbeats")),
    )


def downgrade():
    op.drop_table("ops_heartbeats")
