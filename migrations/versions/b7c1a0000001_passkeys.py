"""passkeys: WebAuthn credentials as a second factor (issue 17)

Revision ID: b7c1a0000001
Revises: a89bb2d58a49
Create Date: 2026-11-30 07:00:00

Passkeys (issue 17): ``webauthn_credentials`` holds each user's registered WebAuthn credentials
(credential id, COSE public key, signature counter, transports, the user's name for it, when it
was added and last used; nothing secret, no PHI). ``passkey_requirements`` says where signing
in needs a passkey: one row per scope, ``organization_id`` NULL for the practice (staff and
admins), else one partner organization. See docs/security.md, "Authentication".

"""

from alembic import op
import sqlalchemy as sa


revision = "b7c1a0000001"
down_revision = "a89bb2d58a49"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "webauthn_credentials",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.LargeBinary(length=1023), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("transports", sa.String(length=100), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_webauthn_credentials_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webauthn_credentials")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_webauthn_credentials_credential_id")),
        sa.UniqueConstraint("public_id", name=op.f("uq_webauthn_credentials_public_id")),
    )
    with op.batch_alter_table("webauthn_credentials", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webauthn_credentials_user_id"), ["user_id"], unique=False)

    op.create_table(
        "passkey_requirements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_passkey_requirements_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_passkey_requirements_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passkey_requirements")),
    )
    with op.batch_alter_table("passkey_requirements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_passkey_requirements_organization_id"), ["organization_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("passkey_requirements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_passkey_requirements_organization_id"))
    op.drop_table("passkey_requirements")

    with op.batch_alter_table("webauthn_credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webauthn_credentials_user_id"))
    op.drop_table("webauthn_credentials")
