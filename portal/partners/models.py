"""Referring partner organizations."""

import enum
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import Date, String, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import PkMixin, TimestampMixin, enum_type
from portal.extensions import db

if TYPE_CHECKING:  # annotations only: the models resolve each other by name at runtime
    from portal.accounts.models import User


class OrganizationKind(enum.StrEnum):
    PRIMARY_CARE = "primary_care"
    ORTHOPEDICS = "orthopedics"
    SPORTS_MEDICINE = "sports_medicine"
    CHIROPRACTIC = "chiropractic"
    WELLNESS = "wellness"
    EMPLOYER = "employer"
    OTHER = "other"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


class RelationshipStatus(enum.StrEnum):
    PROSPECT = "prospect"
    ACTIVE = "active"
    INACTIVE = "inactive"


class Organization(PkMixin, TimestampMixin, db.Model):
    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[OrganizationKind] = mapped_column(enum_type(OrganizationKind))
    relationship_status: Mapped[RelationshipStatus] = mapped_column(
        enum_type(RelationshipStatus, 16),
        default=RelationshipStatus.ACTIVE,
        server_default=RelationshipStatus.ACTIVE.value,
    )
    npi: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(100))
    us_state: Mapped[str | None] = mapped_column(String(2))
    next_check_in: Mapped[date | None] = mapped_column(Date)
    # Sign-in policy, set by a practice admin (portal/mfa).
    is_mfa_required: Mapped[bool] = mapped_column(default=False, server_default=false())
    is_device_trust_allowed: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Single sign-on (portal/sso keeps them consistent with the organization's provider): its users
    # sign in only through the provider; the provider's own second factor (its amr claim) may stand
    # in for the portal's, except where passkeys are required.
    is_sso_only: Mapped[bool] = mapped_column(default=False, server_default=false())
    is_idp_mfa_trusted: Mapped[bool] = mapped_column(default=False, server_default=false())

    users: Mapped[list["User"]] = relationship("User", back_populates="organization", lazy="raise")

    def __repr__(self) -> str:
        return f"<Organization {self.public_id}>"
