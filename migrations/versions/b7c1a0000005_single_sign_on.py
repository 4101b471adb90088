"""single sign-on: identity binding, SSO-only organizations, JIT accounts (issue 18)

Revision ID: b7c1a0000005
Revises: b7c1a0000004
Create Date: 2026-11-30 07:00:00

Organizations gain two sign-in switches: ``is_sso_only`` (their users sign in only through their
provider) and ``is_idp_mfa_trusted`` (the provider's second factor may stand in for the portal's).
Providers gain the rules a health system's identity team sets: a display name, how far e-mail
addresses are trusted without ``email_verified``, extra scopes, just-in-time accounts and the
groups (or roles) claim mapped to partner and partner admin, plus what discovery said and the
last connection test. A domain routes nobody until it is verified (``verified_at``, by whom,
``proof``: a test sign-in or a practice admin's confirmation); domains that exist when this runs
were set up by practice admins and count as confirmed.

``sso_identities`` binds a portal account to one provider account (issuer + subject, unique);
``sso_logins`` keeps each sign-in's provider session id and its ID token (AES-256-GCM under the
PHI keyring) for single logout.

Written by hand for both databases (SQLite through batch mode). The downgrade forgets bindings,
sign-ins and the new settings, and drops the domains that were never verified, so that the older
code (which routes every listed domain) does not start routing unproven ones.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "b7c1a0000005"
down_revision = "b7c1a0000004"
branch_labels = None
depends_on = None

EMAIL_TRUST = sa.Enum("claim_required", "absent_trusted", name="emailtrust", native_enum=False, length=16)
PROOF = sa.Enum("test_sign_in", "confirmed", name="domainproof", native_enum=False, length=16)
LINKED_BY = sa.Enum("email_match", "provisioned", name="linkedby", native_enum=False, length=16)


def upgrade():
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_sso_only", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("is_idp_mfa_trusted", sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table("oidc_providers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display_name", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("email_trust", EMAIL_TRUST, server_default="claim_required", nullable=False))
        batch_op.add_column(sa.Column("extra_scopes", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("is_jit_enabled", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("groups_claim", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("partner_groups", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("admin_groups", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("discovery", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("check_result", sa.String(length=32), nullable=True))

    with op.batch_alter_table("sso_domains", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("verified_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("proof", PROOF, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_sso_domains_verified_by_id_users"), "users", ["verified_by_id"], ["id"], ondelete="SET NULL"
        )
    domains = sa.table(
        "sso_domains",
        sa.column("verified_at", sa.DateTime(timezone=True)),
        sa.column("proof", sa.String(16)),
    )
    op.execute(domains.update().values(verified_at=datetime.now(UTC), proof="confirmed"))

    op.create_table(
        "sso_identities",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("linked_by", LINKED_BY, nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["oidc_providers.id"],
            name=op.f("fk_sso_identities_provider_id_oidc_providers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sso_identities_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_identities")),
        sa.UniqueConstraint("issuer", "subject", name="uq_sso_identities_issuer_subject"),
        sa.UniqueConstraint("public_id", name=op.f("uq_sso_identities_public_id")),
        sa.UniqueConstraint("user_id", name=op.f("uq_sso_identities_user_id")),
    )
    with op.batch_alter_table("sso_identities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sso_identities_provider_id"), ["provider_id"], unique=False)

    op.create_table(
        "sso_logins",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("sid", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id_token_ct", sa.LargeBinary(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["oidc_providers.id"],
            name=op.f("fk_sso_logins_provider_id_oidc_providers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sso_logins_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_logins")),
        sa.UniqueConstraint("public_id", name=op.f("uq_sso_logins_public_id")),
    )
    with op.batch_alter_table("sso_logins", schema=None) as batch_op:
        batch_op.create_index("ix_sso_logins_provider_sid", ["provider_id", "sid"], unique=False)
        batch_op.create_index(batch_op.f("ix_sso_logins_user_id"), ["user_id"], unique=False)


def downgrade():
    with op.batch_alter_table("sso_logins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_logins_user_id"))
        batch_op.drop_index("ix_sso_logins_provider_sid")
    op.drop_table("sso_logins")

    with op.batch_alter_table("sso_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sso_identities_provider_id"))
    op.drop_table("sso_identities")

    op.execute(sa.text("DELETE FROM sso_domains WHERE verified_at IS NULL"))
    with op.batch_alter_table("sso_domains", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_sso_domains_verified_by_id_users"), type_="foreignkey")
        batch_op.drop_column("proof")
        batch_op.drop_column("verified_by_id")
        batch_op.drop_column("verified_at")

    with op.batch_alter_table("oidc_providers", schema=None) as batch_op:
        for column in (
            "check_result",
            "checked_at",
            "discovery",
            "admin_groups",
            "partner_groups",
            "groups_claim",
            "is_jit_enabled",
            "extra_scopes",
            "email_trust",
            "display_name",
        ):
            batch_op.drop_column(column)

    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("is_idp_mfa_trusted")
        batch_op.drop_column("is_sso_only")
