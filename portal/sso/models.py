"""An organization's OpenID provider, the e-mail domains it vouches for, the provider accounts
bound to portal accounts, and the sign-ins that single logout needs to find again."""

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import PkMixin, TimestampMixin, UTCDateTime, enum_type
from portal.core.phi import encrypted
from portal.core.time import now_utc
from portal.extensions import db

if TYPE_CHECKING:  # annotations only: the models resolve each other by name at runtime
    from portal.accounts.models import User
    from portal.partners.models import Organization


class EmailTrust(enum.StrEnum):
    """What an ID token must say before its e-mail address is believed."""

    CLAIM_REQUIRED = "claim_required"  # email_verified true (or Entra's xms_edov true)
    ABSENT_TRUSTED = "absent_trusted"  # no claim at all: trusted (Entra ID); false is still refused

    @property
    def label(self) -> str:
        return {
            EmailTrust.CLAIM_REQUIRED: "Only addresses the provider marks as verified (email_verified)",
            EmailTrust.ABSENT_TRUSTED: "Also addresses without an email_verified claim (Microsoft Entra ID)",
        }[self]


class DomainProof(enum.StrEnum):
    TEST_SIGN_IN = "test_sign_in"  # a verified user of the domain signed in at this provider
    CONFIRMED = "confirmed"  # a practice admin confirmed the organization owns it

    @property
    def label(self) -> str:
        return "test sign-in" if self is DomainProof.TEST_SIGN_IN else "confirmed by the practice"


class LinkedBy(enum.StrEnum):
    EMAIL_MATCH = "email_match"  # first SSO sign-in of an existing account, matched on its address
    PROVISIONED = "provisioned"  # the account was created at its first sign-in (just in time)


class OidcProvider(PkMixin, TimestampMixin, db.Model):
    """Issuer, client registration, sign-in rules and status. The client secret is AES-256-GCM
    ciphertext under the PHI keyring, bound to this row."""

    __tablename__ = "oidc_providers"

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), unique=True)
    issuer: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret = encrypted(str, context="oidc_providers.client_secret")
    is_enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    display_name: Mapped[str | None] = mapped_column(String(100))  # "Lakeside Okta": what people are told
    email_trust: Mapped[EmailTrust] = mapped_column(
        enum_type(EmailTrust, 16), default=EmailTrust.CLAIM_REQUIRED, server_default=EmailTrust.CLAIM_REQUIRED.value
    )
    extra_scopes: Mapped[str | None] = mapped_column(String(255))  # beyond "openid email profile"
    is_jit_enabled: Mapped[bool] = mapped_column(default=False, server_default=false())
    groups_claim: Mapped[str | None] = mapped_column(String(64))  # "groups", "roles": unset means no mapping
    partner_groups: Mapped[list | None] = mapped_column(JSON)
    admin_groups: Mapped[list | None] = mapped_column(JSON)
    # What discovery said when last looked up (endpoints and capabilities; nothing secret), and the
    # outcome of the last connection test.
    discovery: Mapped[dict | None] = mapped_column(JSON)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_result: Mapped[str | None] = mapped_column(String(32))

    organization: Mapped["Organization"] = relationship("Organization", lazy="joined")
    domains: Mapped[list["SsoDomain"]] = relationship(
        "SsoDomain",
        lazy="selectin",
        cascade="all, delete-orphan",
        order_by="SsoDomain.domain",
        back_populates="provider",
    )

    @property
    def label(self) -> str:
        return self.display_name or f"{self.organization.name} sign-in"

    @property
    def domain_names(self) -> list[str]:
        return [d.domain for d in self.domains]

    @property
    def verified_domains(self) -> list[str]:
        return [d.domain for d in self.domains if d.is_verified]

    @property
    def has_group_mapping(self) -> bool:
        return bool(self.groups_claim and (self.partner_groups or self.admin_groups))

    @property
    def end_session_endpoint(self) -> str | None:
        return (self.discovery or {}).get("end_session_endpoint")

    def __repr__(self) -> str:
        return f"<OidcProvider {self.public_id}>"


class SsoDomain(db.Model):
    """One e-mail domain; unique, so an address leads to exactly one provider. It routes nobody
    until it is verified: by a test sign-in at the provider, or a practice admin's confirmation."""

    __tablename__ = "sso_domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("oidc_providers.id", ondelete="CASCADE"), index=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    proof: Mapped[DomainProof | None] = mapped_column(enum_type(DomainProof, 16))

    provider: Mapped["OidcProvider"] = relationship("OidcProvider", back_populates="domains")

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None


class SsoIdentity(PkMixin, db.Model):
    """A portal account bound to one account at its organization's provider (issuer + subject).
    After the first sign-in the subject, not the e-mail address, finds the account."""

    __tablename__ = "sso_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_sso_identities_issuer_subject"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("oidc_providers.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    linked_by: Mapped[LinkedBy] = mapped_column(enum_type(LinkedBy, 16))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped["User"] = relationship("User", lazy="joined")


class SsoLogin(PkMixin, db.Model):
    """One sign-in through a provider: its session id there (``sid``) for back-channel logout, and
    the ID token (encrypted) that RP-initiated logout hands back as ``id_token_hint``."""

    __tablename__ = "sso_logins"
    __table_args__ = (Index("ix_sso_logins_provider_sid", "provider_id", "sid"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("oidc_providers.id", ondelete="CASCADE"))
    sid: Mapped[str | None] = mapped_column(String(255))
    id_token = encrypted(str, nullable=True, context="sso_logins.id_token")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
