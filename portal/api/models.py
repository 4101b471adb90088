"""API clients (a partner organization's EHR), the assertion ids they used, their access tokens; what their EHRs
sent with referrals beyond the web form's fields; their subscriptions and the notifications to deliver."""

import enum
import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import PkMixin, TimestampMixin, UTCDateTime, enum_type
from portal.core.phi import blind_index, encrypted
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


# --- What an EHR sent with a referral (issue 16) ---------------------------------------------------


def exact_identifier(value: str) -> str:
    """Identifier values match exactly (FHIR token search), apart from surrounding blanks."""
    return value.strip()


class PatientIdentifier(PkMixin, db.Model):
    """An identifier the organization's EHR gave the patient (its MRN): the value encrypted, found by blind index.

    Kept per organization: a client sees the identifiers its own organization sent, never another's.
    """

    __tablename__ = "api_patient_identifiers"

    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    system: Mapped[str] = mapped_column(String(255))  # the EHR's identifier namespace (a URI), not PHI
    type_code: Mapped[str | None] = mapped_column(String(16))  # v2-0203 code, e.g. MR
    value = encrypted(str)
    value_bidx = blind_index(value=exact_identifier)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class OrderIdentifier(PkMixin, db.Model):
    """The EHR's identifier of its order (ServiceRequest.identifier): one referral per identifier and organization.

    The unique constraint is what makes a retried or concurrent submission of the same order create one
    referral: the second insert fails and its request answers with the first referral.
    """

    __tablename__ = "api_order_identifiers"
    __table_args__ = (
        UniqueConstraint("organization_id", "system", "value_bidx", name="uq_api_order_identifiers_organization_value"),
    )

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"))
    # Set in the same transaction, right after the referral is created (the claim comes first).
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), index=True)
    system: Mapped[str] = mapped_column(String(255))
    type_code: Mapped[str | None] = mapped_column(String(16))
    value = encrypted(str)
    value_bidx = blind_index(value=exact_identifier)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


class ReferralDetail(PkMixin, db.Model):
    """What the EHR sent beyond the web form's fields, encrypted: its authoredOn, its codes for the service and
    the reason, the requester's role, supporting Conditions, Coverage and QuestionnaireResponses, and which entries
    were ignored. Shown to staff on the referral page and echoed in the API's ServiceRequest."""

    __tablename__ = "api_referral_details"

    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), unique=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("api_clients.id", ondelete="SET NULL"))
    content = encrypted(dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)


# --- Topic-based subscriptions (FHIR R4 Subscriptions Backport) ------------------------------------


class SubscriptionStatus(enum.StrEnum):
    REQUESTED = "requested"
    ACTIVE = "active"
    ERROR = "error"
    OFF = "off"


class PayloadContent(enum.StrEnum):
    EMPTY = "empty"
    ID_ONLY = "id-only"
    FULL_RESOURCE = "full-resource"


class Subscription(PkMixin, TimestampMixin, db.Model):
    """A client's rest-hook subscription to its organization's Task status changes."""

    __tablename__ = "api_subscriptions"

    client_id: Mapped[int] = mapped_column(ForeignKey("api_clients.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    topic: Mapped[str] = mapped_column(String(255))
    status: Mapped[SubscriptionStatus] = mapped_column(enum_type(SubscriptionStatus, 16))
    endpoint: Mapped[str] = mapped_column(String(500))
    # channel.header lines usually carry the receiver's credentials: encrypted like PHI.
    headers = encrypted(list, nullable=True)
    reason = encrypted(str)
    payload: Mapped[PayloadContent] = mapped_column(enum_type(PayloadContent, 16))
    filter_status: Mapped[str | None] = mapped_column(String(200))  # Task.status codes, comma-separated
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    timeout_seconds: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    events_since_start: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(255))  # an HTTP status or exception class, never content

    client: Mapped["ApiClient"] = relationship("ApiClient", lazy="joined")


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"


class SubscriptionDelivery(PkMixin, db.Model):
    """One notification to deliver: written in the transaction of the change it reports (so it exists exactly
    when the change does), delivered by the worker (`flask fhir deliver`), never from a request."""

    __tablename__ = "api_subscription_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_number", name="uq_api_subscription_deliveries_event"),
        Index("ix_api_subscription_deliveries_due", "state", "next_attempt_at"),
    )

    subscription_id: Mapped[int] = mapped_column(ForeignKey("api_subscriptions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # handshake or event-notification
    event_number: Mapped[int] = mapped_column(BigInteger)  # 0 for the handshake
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id", ondelete="CASCADE"), index=True)
    task_status: Mapped[str | None] = mapped_column(String(16))  # Task.status after the change
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    state: Mapped[DeliveryState] = mapped_column(
        enum_type(DeliveryState, 16), default=DeliveryState.PENDING, server_default=DeliveryState.PENDING.value
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(255))

    subscription: Mapped["Subscription"] = relationship("Subscription", lazy="joined")
