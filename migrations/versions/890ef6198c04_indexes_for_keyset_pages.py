"""indexes for keyset pages: each list page reads one index range in order (core/paging.py)

Revision ID: 890ef6198c04
Revises: f44613de711a
Create Date: 2026-11-30 05:42:35.415463

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '890ef6198c04'
down_revision = 'f44613de711a'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_patient_action', ['patient_id', 'action', 'occurred_at', 'id'], unique=False)

    with op.batch_alter_table('progress_updates', schema=None) as batch_op:
        batch_op.create_index('ix_progress_updates_queue', ['state', 'submitted_at', 'id'], unique=False)

    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index('ix_referrals_organization_changed', ['organization_id', 'status_changed_at', 'id'], unique=False)
        batch_op.create_index('ix_referrals_status_changed', ['status', 'status_changed_at', 'id'], unique=False)
        batch_op.create_index('ix_referrals_organization_updated', ['organization_id', 'updated_at', 'public_id'],
                              unique=False)



def downgrade():
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index('ix_referrals_organization_updated')
        batch_op.drop_index('ix_referrals_status_changed')
        batch_op.drop_index('ix_referrals_organization_changed')

    with op.batch_alter_table('progress_updates', schema=None) as batch_op:
        batch_op.drop_index('ix_progress_updates_queue')

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_patient_action')

