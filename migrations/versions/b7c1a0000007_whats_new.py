"""what's new for partners, and undoing a removed score (issue 15)

Revision ID: b7c1a0000007
Revises: b7c1a0000006
Create Date: 2026-12-01 07:00:00

``referral_views``: when a partner user last opened a referral (one row per user and referral,
written only when the referral had news for them); the partner home's "what's new" is what
happened to their organization's referrals after it. ``outcome_score_removals``: a score staff
removed, kept for a while so the removal can be undone.

Written by hand for both databases (SQLite through batch mode for the indexes). The downgrade
drops both tables: nothing else refers to them, and losing them only makes recent news show as
new again and ends the undo window early.
"""

import sqlalchemy as sa
from alembic import op

revision = "b7c1a0000007"
down_revision = "b7c1a0000006"
branch_labels = None
depends_on = None

PHASE = sa.Enum("intake", "interim", "discharge", name="phase", native_enum=False, length=16)


def upgrade():
    op.create_table(
        "referral_views",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_referral_views_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_referral_views_referral_id_referrals"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "referral_id", name=op.f("pk_referral_views")),
    )
    with op.batch_alter_table("referral_views", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_views_referral_id"), ["referral_id"], unique=False)

    op.create_table(
        "outcome_score_removals",
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("instrument_id", sa.Integer(), nullable=False),
        sa.Column("score_public_id", sa.Uuid(), nullable=False),
        sa.Column("phase", PHASE, nullable=False),
        sa.Column("measured_on", sa.Date(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_by_id", sa.Integer(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_outcome_score_removals_referral_id_referrals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["instrument_id"],
            ["outcome_instruments.id"],
            name=op.f("fk_outcome_score_removals_instrument_id_outcome_instruments"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_outcome_score_removals_recorded_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["removed_by_id"], ["users.id"], name=op.f("fk_outcome_score_removals_removed_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcome_score_removals")),
        sa.UniqueConstraint("public_id", name=op.f("uq_outcome_score_removals_public_id")),
    )
    with op.batch_alter_table("outcome_score_removals", schema=None) as batch_op:
        batch_op.create_index("ix_outcome_score_removals_referral", ["referral_id", "removed_at"], unique=False)


def downgrade():
    with op.batch_alter_table("outcome_score_removals", schema=None) as batch_op:
        batch_op.drop_index("ix_outcome_score_removals_referral")
    op.drop_table("outcome_score_removals")

    with op.batch_alter_table("referral_views", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_views_referral_id"))
    op.drop_table("referral_views")
