"""Relationship workspace: owners, contacts, touchpoints, educational events and resources.

The owner on staff lives in its own table rather than on organizations: an
organizations.owner_id -> users FK would close a cycle with users.organization_id ->
organizations and make the User <-> Organization relationships ambiguous.
"""

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Optional

from sqlalchemy import Date, ForeignKey, LargeBinary, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import PkMixin, TimestampMixin, UTCDateTime, enum_type
from portal.core.time import now_utc
from portal.extensions import db

if TYPE_CHECKING:  # annotations only: the models resolve each other by name at runtime
    from portal.accounts.models import User
    from portal.partners.models import Organization


class TouchpointKind(enum.StrEnum):
    LUNCH = "lunch"
    CALL = "call"
    VISIT = "visit"
    EVENT = "event"
    THANK_YOU_NOTE = "thank_you_note"
    RESOURCE_SENT = "resource_sent"
    WEBINAR = "webinar"

    @property
    def label(self) -> str:
        return {
            "lunch": "Lunch",
            "call": "Call",
            "visit": "Visit",
            "event": "Event",
            "thank_you_note": "Thank-you note",
            "resource_sent": "Educational resource sent",
            "webinar": "Webinar",
        }[self.value]


class RelationshipOwner(db.Model):
    """The staff member who owns one partner relationship."""

    __tablename__ = "relationship_owners"

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    owner: Mapped["User"] = relationship("User", lazy="joined")


class Contact(PkMixin, TimestampMixin, db.Model):
    """A person at a partner organization (office manager, physician, HR lead): not a patient."""

    __tablename__ = "partner_contacts"

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    is_primary: Mapped[bool] = mapped_column(default=False, server_default=false())

    def __repr__(self) -> str:
        return f"<Contact {self.public_id}>"


class Touchpoint(PkMixin, db.Model):
    """One contact with a partner: a lunch, a call, a visit, an event they attended..."""

    __tablename__ = "touchpoints"
    # One attendance touchpoint per organization and event, however many of its people came.
    __table_args__ = (UniqueConstraint("organization_id", "event_id", name="uq_touchpoints_organization_event"),)

    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[TouchpointKind] = mapped_column(enum_type(TouchpointKind, 16))
    occurred_on: Mapped[date] = mapped_column(Date, index=True)
    # Free text about the relationship; the form says not to write patient information here.
    note: Mapped[str | None] = mapped_column(String(1000))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("learning_events.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)

    staff: Mapped[Optional["User"]] = relationship("User", lazy="joined")

    def __repr__(self) -> str:
        return f"<Touchpoint {self.public_id} {self.kind}>"


class EventKind(enum.StrEnum):
    WEBINAR = "webinar"
    LUNCH_AND_LEARN = "lunch_and_learn"
    IN_PERSON = "in_person"

    @property
    def label(self) -> str:
        return {"webinar": "Webinar", "lunch_and_learn": "Lunch-and-learn", "in_person": "In person"}[self.value]


class Event(PkMixin, TimestampMixin, db.Model):
    """An educational event staff publish for partners."""

    __tablename__ = "learning_events"

    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[EventKind] = mapped_column(enum_type(EventKind, 16))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    location: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    is_published: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    def __repr__(self) -> str:
        return f"<Event {self.public_id}>"


class RsvpResponse(enum.StrEnum):
    GOING = "going"
    NOT_GOING = "not_going"

    @property
    def label(self) -> str:
        return {"going": "Going", "not_going": "Not going"}[self.value]


class Rsvp(PkMixin, db.Model):
    __tablename__ = "event_rsvps"
    __table_args__ = (UniqueConstraint("event_id", "user_id", name="uq_event_rsvps_event_user"),)

    event_id: Mapped[int] = mapped_column(ForeignKey("learning_events.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    response: Mapped[RsvpResponse] = mapped_column(enum_type(RsvpResponse, 16))
    responded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc)
    attended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped["User"] = relationship("User", lazy="joined")
    organization: Mapped["Organization"] = relationship("Organization", lazy="joined")


class Resource(PkMixin, TimestampMixin, db.Model):
    """A downloadable educational resource (a PDF). Small, not PHI: kept in the database."""

    __tablename__ = "learning_resources"

    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(1000))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    is_published: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    def __repr__(self) -> str:
        return f"<Resource {self.public_id}>"
