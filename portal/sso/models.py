"""An organization's OpenID provider and the e-mail domains it vouches for."""

from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import PkMixin, TimestampMixin
from portal.core.phi import encrypted
from portal.extensions import db

if TYPE_CHECKING:  # annotations only: the models resolve each other by name at runtime
    from portal.partners.models import Organization


class OidcProvider(PkMixin, TimestampMixin, db.Model):
    """Issuer, client registration and status. The client secret is AES-256-GCM ciphertext
    under the PHI keyring, bound to this row."""

    __tablename__ = "oidc_providers"

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), unique=True)
    issuer: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret = encrypted(str, context="oidc_providers.client_secret")
    is_enabled: Mapped[bool] = mapped_column(default=True, server_default=true())

    organization: Mapped["Organization"] = relationship("Organization", lazy="joined")
    domains: Mapped[list["SsoDomain"]] = relationship(
        "SsoDomain",
        lazy="selectin",
        cascade="all, delete-orphan",
        order_by="SsoDomain.domain",
        back_populates="provider",
    )

    @property
    def domain_names(self) -> list[str]:
        return [d.domain for d in self.domains]

    def __repr__(self) -> str:
        return f"<OidcProvider {self.public_id}>"


class SsoDomain(db.Model):
    """One e-mail domain; unique, so an address leads to exactly one provider."""

    __tablename__ = "sso_domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("oidc_providers.id", ondelete="CASCADE"), index=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)

    provider: Mapped["OidcProvider"] = relationship("OidcProvider", back_populates="domains")
