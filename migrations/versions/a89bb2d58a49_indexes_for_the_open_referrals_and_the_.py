"""indexes for the open referrals and the intake queue: each read in index order (core/paging.py)

Revision ID: a89bb2d58a49
Revises: 890ef6198c04
Create Date: 2026-11-30 06:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = "a89bb2d58a49"
down_revision = "890ef6198c04"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referrals_organization_status", ["organization_id", "status", "status_changed_at", "id"], unique=False
        )
    # Urgent first ("urgent" sorts after "routine"), then oldest: one direction per column, as the
    # queue orders. Alembic cannot compare such an index on SQLite, so it is written here by hand.
    op.create_index("ix_referrals_queue", "referrals", ["status", sa.text("urgency DESC"), "submitted_at", "id"])


def downgrade():
    op.drop_index("ix_referrals_queue", table_name="referrals")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index("ix_referrals_organization_status")
