"""API clients (a partner organization's EHR), the assertion ids they used, and their access tokens."""

import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import PkMixin, TimestampMixin, UTCDateTime
from portal.core.time import now_utc
from portal.extensions import db

if TYPE_CHECKING:  # annotations only: the models resolve each other by name at runtime
    from portal.partners.models import Organization


def new_client_id() -> str:
    return "ehr-" + secrets.token_urlsafe(12)


class ApiClient(PkMixin, TimestampMixin, db.Model):
    """A registered backend client. It has no secret: it proves itself with a JWT signed by a key in its JWKS."""

    __tablename__ = "api_clients"

    client_id: Mapped[str] = mapped_column(String(64), unique=True, default=new_client_id)
    name: Mapped[str] = mapped_column(String(200))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    jwks: Mapped[dict | None] = mapped_column(JSON)  # public keys only (checked on registration)
    jwks_url: Mapped[str | None] = mapped_column(String(500))
    scopes: Mapped[str] = mapped_column(String(1000), default="")  # space-separated system/... scopes
    is_enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    organization: Mapped["Organization"] = relationship("Organization", lazy="joined")

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())

    def __repr__(self) -> str:
        return f"<ApiClient {self.client_id}>"


class UsedAssertion(db.Model):
    """A client assertion's jti, kept until the assertion expires so it cannot be replayed."""

    __tablename__ = "api_used_assertions"
    __table_args__ = (UniqueConstraint("client_id", "jti", name="uq_api_used_assertions_client_id_jti"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"))
    jti: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AccessToken(db.Model):
    """An issued bearer token: only its SHA-256 is stored, so a database leak grants nothing."""

    __tablename__ = "api_access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    scope: Mapped[str] = mapped_column(String(1000))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    client: Mapped["ApiClient"] = relationship("ApiClient", lazy="joined")
