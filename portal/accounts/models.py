"""Accounts, server-side session records and one-time account tokens."""

import enum
import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Optional

from sqlalchemy import CheckConstraint, ForeignKey, Integer, LargeBinary, String, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import PkMixin, TimestampMixin, UTCDateTime, enum_type
from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.extensions import db

if TYPE_CHECKING:  # annotations only: the models resolve each other by name at runtime
    from portal.partners.models import Organization


def token_digest(raw: str) -> bytes:
    """Only a digest of a bearer secret is stored, so a database leak grants nothing."""
    return hashlib.sha256(raw.encode()).digest()


class User(PkMixin, TimestampMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "(role IN ('partner', 'partner_admin')) = (organization_id IS NOT NULL)",
            name="partner_has_organization",
        ),
    )

    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(enum_type(Role, 16))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id"), index=True)
    npi: Mapped[str | None] = mapped_column(String(10))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Wrong second-factor codes in a row; counted apart from failed_logins, which a right
    # password resets, so knowing the password does not buy unlimited code guesses.
    mfa_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    organization: Mapped[Optional["Organization"]] = relationship("Organization", back_populates="users", lazy="joined")

    # Flask-Login protocol. is_active gates login and every request.
    @property
    def is_active(self) -> bool:
        return self.is_enabled and self.password_hash is not None

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.public_id)

    @property
    def is_locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > now_utc()

    def __repr__(self) -> str:
        return f"<User {self.public_id} {self.role}>"


class UserSession(PkMixin, db.Model):
    """A signed-in browser. The cookie holds a random token; only its digest is here."""

    __tablename__ = "user_sessions"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    auth_method: Mapped[str | None] = mapped_column(String(32))  # "password+totp", "oidc", ...

    user: Mapped["User"] = relationship("User", lazy="joined")

    @property
    def has_second_factor(self) -> bool:
        return "+" in (self.auth_method or "")


class TokenPurpose(enum.StrEnum):
    INVITE = "invite"
    PASSWORD_RESET = "password_reset"


class AccountToken(PkMixin, db.Model):
    """A single-use, expiring token behind an invitation or password-reset link."""

    __tablename__ = "account_tokens"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[TokenPurpose] = mapped_column(enum_type(TokenPurpose, 16))
    token_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped["User"] = relationship("User", lazy="joined")
