"""superseded consent versions

Revision ID: 5d0c2270b086
Revises: fb2e8149d436
Create Date: 2026-11-26 20:38:00.000000

consents.superseded_at marks the versions a newer version replaced (the app stamps it on
every flush that adds a version), so "the newest version" is an indexable IS NULL instead
of a NOT EXISTS probe per consent. Backfilled here from the version chains.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5d0c2270b086'
down_revision = 'fb2e8149d436'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("""
        UPDATE consents SET superseded_at = (
            SELECT MIN(newer.recorded_at) FROM consents newer
            WHERE newer.consent_key = consents.consent_key AND newer.version > consents.version)
        WHERE EXISTS (SELECT 1 FROM consents newer
                      WHERE newer.consent_key = consents.consent_key AND newer.version > consents.version)
    """)
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index('ix_consents_in_effect', ['grantee_organization_id', 'status', 'patient_id', 'effective_on', 'expires_on', 'grantee_user_id', 'allows_outcome_scores', 'allows_progress_notes', 'allows_discharge_summary', 'allows_story_publication', 'superseded_at'], unique=False, sqlite_where=sa.text('superseded_at IS NULL'), postgresql_where=sa.text('superseded_at IS NULL'))


def downgrade():
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index('ix_consents_in_effect', sqlite_where=sa.text('superseded_at IS NULL'), postgresql_where=sa.text('superseded_at IS NULL'))
        batch_op.drop_column('superseded_at')
