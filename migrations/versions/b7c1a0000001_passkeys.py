"""passkeys: WebAuthn credentials as a second factor (issue 17)

Reserved in the migration chain so that work on several issues can land in any order; until its
work lands it changes nothing.

Revision ID: b7c1a0000001
Revises: a89bb2d58a49
Create Date: 2026-11-30 07:00:00

"""

revision = "b7c1a0000001"
down_revision = "a89bb2d58a49"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
