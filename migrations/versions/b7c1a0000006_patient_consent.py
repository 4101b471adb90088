"""patients give their own consent (issue 20)

Reserved in the migration chain so that work on several issues can land in any order; until its
work lands it changes nothing.

Revision ID: b7c1a0000006
Revises: b7c1a0000005
Create Date: 2026-11-30 07:00:00

"""

revision = "b7c1a0000006"
down_revision = "b7c1a0000005"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
