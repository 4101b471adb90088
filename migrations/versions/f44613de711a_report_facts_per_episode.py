"""report facts per episode

Revision ID: f44613de711a
Revises: 5d0c2270b086
Create Date: 2026-11-26 20:13:18.747529

The reports now count derived rows (portal/outcomes/facts.py): report_episodes (one per
referral: stage reached, wait, visits) and episode_outcomes, which gains the episode's
organization, patient and submission time so one covering index answers an outcome
aggregate. Both are derived data: episode_outcomes is recreated, and both are backfilled
here with the same rules the app applies on every write.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f44613de711a'
down_revision = '5d0c2270b086'
branch_labels = None
depends_on = None

# Funnel stage from the status (portal/outcomes/facts.py): 4 completed, 3 seen, 2 scheduled,
# 1 accepted, 0 only sent; a cancelled referral reached what its timeline shows.
STAGE = """
    CASE
      WHEN r.status = 'discharged' THEN 4
      WHEN r.status IN ('in_care', 'discharged') THEN 3
      WHEN r.status IN ('scheduled', 'no_show', 'in_care', 'discharged') THEN 2
      WHEN r.status IN ('accepted', 'scheduled', 'no_show', 'in_care', 'discharged') THEN 1
      WHEN r.status = 'cancelled' AND EXISTS (SELECT 1 FROM referral_events e
                                              WHERE e.referral_id = r.id AND e.to_status = 'scheduled') THEN 2
      WHEN r.status = 'cancelled' AND EXISTS (SELECT 1 FROM referral_events e
                                              WHERE e.referral_id = r.id AND e.to_status = 'accepted') THEN 1
      ELSE 0
    END"""


def _days(later: str, earlier: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"CAST(EXTRACT(epoch FROM {later} - {earlier}) AS DOUBLE PRECISION) / 86400.0"
    return f"julianday({later}) - julianday({earlier})"


def _episode_outcomes_table(*extra):
    op.create_table('episode_outcomes',
    sa.Column('referral_id', sa.Integer(), nullable=False),
    sa.Column('instrument_id', sa.Integer(), nullable=False),
    *extra,
    sa.Column('intake', sa.Float(), nullable=False),
    sa.Column('discharge', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['instrument_id'], ['outcome_instruments.id'], name=op.f('fk_episode_outcomes_instrument_id_outcome_instruments')),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_episode_outcomes_referral_id_referrals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('referral_id', 'instrument_id', name=op.f('pk_episode_outcomes'))
    )


PAIRS = """
    FROM outcome_scores s JOIN referrals r ON r.id = s.referral_id
    WHERE s.phase IN ('intake', 'discharge')
    GROUP BY s.referral_id, s.instrument_id, r.organization_id, r.patient_id, r.submitted_at
    HAVING MAX(CASE WHEN s.phase = 'intake' THEN s.score END) IS NOT NULL
       AND MAX(CASE WHEN s.phase = 'discharge' THEN s.score END) IS NOT NULL"""


def upgrade():
    op.create_table('report_episodes',
    sa.Column('referral_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('organization_id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('stage', sa.SmallInteger(), nullable=False),
    sa.Column('days_to_first_visit', sa.Float(), nullable=True),
    sa.Column('visits', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_report_episodes_referral_id_referrals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('referral_id', name=op.f('pk_report_episodes'))
    )
    op.execute(f"""
        INSERT INTO report_episodes (referral_id, organization_id, patient_id, submitted_at, stage,
                                     days_to_first_visit, visits)
        SELECT r.id, r.organization_id, r.patient_id, r.submitted_at, {STAGE},
               CASE WHEN r.status IN ('in_care', 'discharged') AND r.first_visit_at IS NOT NULL
                    THEN {_days('r.first_visit_at', 'r.submitted_at')} END,
               CASE WHEN r.status = 'discharged' THEN v.visits END
        FROM referrals r LEFT OUTER JOIN episode_visits v ON v.referral_id = r.id
    """)
    with op.batch_alter_table('report_episodes', schema=None) as batch_op:
        batch_op.create_index('ix_report_episodes_patients', ['organization_id', 'patient_id', 'submitted_at', 'stage', 'visits'], unique=False)
        batch_op.create_index('ix_report_episodes_cohort', ['organization_id', 'submitted_at', 'stage', 'patient_id', 'visits', 'days_to_first_visit'], unique=False)
        batch_op.create_index('ix_report_episodes_submitted', ['submitted_at', 'organization_id', 'stage'], unique=False)
        batch_op.create_index('ix_report_episodes_wait', ['organization_id', 'days_to_first_visit', 'submitted_at'], unique=False)

    op.drop_table('episode_outcomes')
    _episode_outcomes_table(sa.Column('organization_id', sa.Integer(), nullable=False),
                            sa.Column('patient_id', sa.Integer(), nullable=False),
                            sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False))
    op.execute(f"""
        INSERT INTO episode_outcomes (referral_id, instrument_id, organization_id, patient_id, submitted_at,
                                      intake, discharge)
        SELECT s.referral_id, s.instrument_id, r.organization_id, r.patient_id, r.submitted_at,
               MAX(CASE WHEN s.phase = 'intake' THEN s.score END),
               MAX(CASE WHEN s.phase = 'discharge' THEN s.score END)
        {PAIRS}
    """)
    with op.batch_alter_table('episode_outcomes', schema=None) as batch_op:
        batch_op.create_index('ix_episode_outcomes_patients', ['organization_id', 'instrument_id', 'patient_id', 'submitted_at', 'intake', 'discharge'], unique=False)
        batch_op.create_index('ix_episode_outcomes_report', ['organization_id', 'instrument_id', 'submitted_at', 'patient_id', 'intake', 'discharge'], unique=False)
        batch_op.create_index('ix_episode_outcomes_submitted', ['submitted_at', 'organization_id', 'instrument_id'], unique=False)

    # The reports no longer read referrals directly; one index fewer to keep on every referral write.
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index('ix_referrals_report_cohort')


def downgrade():
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index('ix_referrals_report_cohort', ['organization_id', 'submitted_at', 'status', 'patient_id', 'first_visit_at'], unique=False)

    op.drop_table('episode_outcomes')
    _episode_outcomes_table()
    op.execute(f"""
        INSERT INTO episode_outcomes (referral_id, instrument_id, intake, discharge)
        SELECT s.referral_id, s.instrument_id,
               MAX(CASE WHEN s.phase = 'intake' THEN s.score END),
               MAX(CASE WHEN s.phase = 'discharge' THEN s.score END)
        {PAIRS}
    """)

    op.drop_table('report_episodes')
