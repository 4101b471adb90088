"""Changes to partner relationships: owner and check-in, contacts, touchpoints, reminders.

Services add and flush; the request (or the CLI command, per batch) commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from portal.accounts.models import User
from portal.audit.services import AuditAction, record
from portal.core.errors import UserError
from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.core.uploads import clean_filename
from portal.core.urls import external_url
from portal.extensions import db
from portal.notifications.services import enqueue
from portal.partners.models import Organization, RelationshipStatus
from portal.relationships.models import (
    Contact,
    Event,
    EventKind,
    RelationshipOwner,
    Resource,
    Rsvp,
    RsvpResponse,
    Touchpoint,
    TouchpointKind,
)


class RelationshipError(UserError):
    """A user-facing refusal; the message is safe to show."""


def staff_member(public_id) -> User | None:
    """An active practice user who may own a relationship."""
    return db.session.scalar(
        select(User).where(User.public_id == public_id, User.role.in_([Role.STAFF, Role.ADMIN]), User.is_enabled)
    )


def set_owner(org: Organization, owner: User | None) -> None:
    current = db.session.get(RelationshipOwner, org.id)
    if owner is None:
        if current is not None:
            db.session.delete(current)
    elif current is None:
        db.session.add(RelationshipOwner(organization_id=org.id, owner_id=owner.id))
    elif current.owner_id != owner.id:
        current.owner_id = owner.id


def update_relationship(
    actor: User, org: Organization, *, status: RelationshipStatus, owner: User | None, next_check_in: date | None
) -> None:
    org.relationship_status = status
    org.next_check_in = next_check_in
    set_owner(org, owner)
    db.session.flush()
    record(
        AuditAction.RELATIONSHIP_UPDATED,
        actor=actor,
        obj=org,
        status=status.value,
        owner=owner.public_id if owner else "",
        next_check_in=next_check_in or "",
    )


def add_contact(
    actor: User,
    org: Organization,
    *,
    name: str,
    title: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    is_primary: bool = False,
) -> Contact:
    if is_primary:
        for other in db.session.scalars(select(Contact).where(Contact.organization_id == org.id, Contact.is_primary)):
            other.is_primary = False
    contact = Contact(
        organization_id=org.id,
        name=name,
        title=title or None,
        email=email or None,
        phone=phone or None,
        is_primary=is_primary,
    )
    db.session.add(contact)
    db.session.flush()
    record(AuditAction.CONTACT_ADDED, actor=actor, obj=contact, organization=org.public_id)
    return contact


def log_touchpoint(
    actor: User | None,
    org: Organization,
    *,
    kind: TouchpointKind,
    occurred_on: date,
    note: str | None = None,
    next_check_in: date | None = None,
    event_id: int | None = None,
) -> Touchpoint:
    """Record a touchpoint; optionally set the next check-in date in the same step."""
    touchpoint = Touchpoint(
        organization_id=org.id,
        kind=kind,
        occurred_on=occurred_on,
        note=note or None,
        staff_id=actor.id if actor else None,
        event_id=event_id,
    )
    db.session.add(touchpoint)
    if next_check_in is not None:
        org.next_check_in = next_check_in
    db.session.flush()
    record(
        AuditAction.TOUCHPOINT_LOGGED,
        actor=actor,
        obj=touchpoint,
        organization=org.public_id,
        kind=kind.value,
        next_check_in=next_check_in or "",
    )
    return touchpoint


# --- reminders (`flask partners remind`) -------------------------------------------------


@dataclass
class ReminderResult:
    check_ins: int = 0
    at_risk: int = 0
    unowned: list[str] | None = None


def send_reminders(today: date, *, at_risk_minimum: int = 4) -> ReminderResult:
    """Enqueue "check-in due" and "partner at risk" e-mails to each relationship's owner.

    Dedupe keys make the command safe to run as often as cron likes: one check-in reminder
    per scheduled date, one at-risk warning per organization per month.
    """
    from portal.relationships.queries import referral_window_counts

    result = ReminderResult(unowned=[])
    rows = db.session.execute(
        select(Organization, User)
        .join(RelationshipOwner, RelationshipOwner.organization_id == Organization.id, isouter=True)
        .join(User, User.id == RelationshipOwner.owner_id, isouter=True)
        .where(Organization.relationship_status != RelationshipStatus.INACTIVE)
        .order_by(Organization.name)
    ).all()
    counts = referral_window_counts([org.id for org, _ in rows], today)
    for org, owner in rows:
        link = external_url("relationships.organization", org_id=org.public_id)
        due = org.next_check_in is not None and org.next_check_in <= today
        current, previous = counts.get(org.id, (0, 0))
        at_risk = previous >= at_risk_minimum and current * 2 <= previous
        if owner is None or not owner.is_active:
            if due or at_risk:
                result.unowned.append(org.name)
            continue
        if due:
            message = enqueue(
                owner.email,
                "checkin_due",
                organization=org.name,
                link=link,
                dedupe_key=f"checkin:{org.public_id}:{org.next_check_in.isoformat()}",
            )
            result.check_ins += message.id is None  # None: new, not an earlier run's row
        if at_risk:
            message = enqueue(
                owner.email,
                "partner_at_risk",
                organization=org.name,
                link=link,
                previous=previous,
                current=current,
                dedupe_key=f"at-risk:{org.public_id}:{today:%Y-%m}",
            )
            result.at_risk += message.id is None
        db.session.flush()
    return result


# --- educational events and resources ------------------------------------------------------

RESOURCE_MAX_BYTES = 10 * 1024 * 1024


def publish_event(
    actor: User,
    *,
    title: str,
    kind: EventKind,
    starts_at: datetime,
    location: str | None,
    description: str | None,
    is_published: bool,
) -> Event:
    event = Event(
        title=title,
        kind=kind,
        starts_at=starts_at,
        location=location or None,
        description=description or None,
        is_published=is_published,
        created_by_id=actor.id,
    )
    db.session.add(event)
    db.session.flush()
    record(AuditAction.EVENT_PUBLISHED, actor=actor, obj=event, is_published=is_published)
    return event


def respond(user: User, event: Event, response: RsvpResponse) -> Rsvp:
    """A partner's RSVP; answering again changes the answer. Not for events long past."""
    if event.starts_at < now_utc() - timedelta(days=1):
        raise RelationshipError("This event is over.")
    rsvp = db.session.scalar(select(Rsvp).where(Rsvp.event_id == event.id, Rsvp.user_id == user.id))
    if rsvp is None:
        rsvp = Rsvp(event_id=event.id, user_id=user.id, organization_id=user.organization_id, response=response)
        db.session.add(rsvp)
    else:
        rsvp.response = response
    db.session.flush()
    record(AuditAction.EVENT_RSVP, actor=user, obj=event, response=response.value)
    return rsvp


def mark_attended(actor: User, event: Event, rsvp: Rsvp) -> Touchpoint:
    """Attendance becomes a touchpoint for the attendee's organization (one per event)."""
    from portal.core.time import practice_date

    if rsvp.attended_at is None:
        rsvp.attended_at = now_utc()
    touchpoint = db.session.scalar(
        select(Touchpoint).where(Touchpoint.organization_id == rsvp.organization_id, Touchpoint.event_id == event.id)
    )
    if touchpoint is None:
        kind = TouchpointKind.WEBINAR if event.kind is EventKind.WEBINAR else TouchpointKind.EVENT
        touchpoint = log_touchpoint(
            actor,
            rsvp.organization,
            kind=kind,
            event_id=event.id,
            occurred_on=practice_date(event.starts_at),
            note=f"Attended “{event.title}”.",
        )
    record(AuditAction.EVENT_ATTENDANCE, actor=actor, obj=event, rsvp=rsvp.public_id)
    return touchpoint


def add_resource(
    actor: User, *, title: str, description: str | None, upload: FileStorage, is_published: bool
) -> Resource:
    data = upload.stream.read(RESOURCE_MAX_BYTES + 1)
    if len(data) > RESOURCE_MAX_BYTES:
        raise RelationshipError(f"The file is larger than {RESOURCE_MAX_BYTES // (1024 * 1024)} MB.")
    if not data.startswith(b"%PDF-"):
        raise RelationshipError("Resources must be PDF files.")
    resource = Resource(
        title=title,
        description=description or None,
        filename=clean_filename(upload.filename),
        content_type="application/pdf",
        size=len(data),
        data=data,
        is_published=is_published,
        created_by_id=actor.id,
    )
    db.session.add(resource)
    db.session.flush()
    record(AuditAction.RESOURCE_PUBLISHED, actor=actor, obj=resource, is_published=is_published)
    return resource


# --- monthly digest and consent reminders ----------------------------------------------------


def send_monthly_digests(month_start: date) -> int:
    """Each partner admin gets their organization's headline numbers for one month.

    Aggregates only, from the same report partners see, so cells under 11 patients read
    "<11". One message per admin per month (dedupe key), so re-running is harmless.
    """
    from calendar import monthrange

    from portal.outcomes.reports import DateRange, partner_report

    month_end = month_start.replace(day=monthrange(month_start.year, month_start.month)[1])
    admins = db.session.execute(
        select(Organization, User)
        .join(User, User.organization_id == Organization.id)
        .where(
            User.role == Role.PARTNER_ADMIN,
            User.is_enabled.is_(True),
            User.password_hash.is_not(None),
            Organization.relationship_status != RelationshipStatus.INACTIVE,
        )
        .order_by(Organization.id)
    ).all()
    queued, reports = 0, {}
    for org, admin in admins:
        if org.id not in reports:
            reports[org.id] = headline_figures(partner_report(org, DateRange(month_start, month_end)))
        message = enqueue(
            admin.email,
            "monthly_digest",
            organization=org.name,
            month=f"{month_start:%B %Y}",
            dedupe_key=f"digest:{org.public_id}:{month_start:%Y-%m}:{admin.public_id}",
            **reports[org.id],
        )
        queued += message.id is None
        db.session.flush()
    return queued


def headline_figures(report) -> dict:
    """Referrals sent, patients seen and the pooled MCID rate; "<11" wherever too few patients."""
    from portal.outcomes.reports import SMALL_CELL, SUPPRESSED

    def shown(cell):
        return SUPPRESSED if cell.is_suppressed else int(cell.value or 0)

    episodes = sum(o.episodes.value or 0 for o in report.outcomes if not o.episodes.is_suppressed)
    reached = sum(o.reached.value or 0 for o in report.outcomes if not o.episodes.is_suppressed)
    patients = sum(o.episodes.patients for o in report.outcomes if not o.episodes.is_suppressed)
    rate = round(100 * reached / episodes) if episodes and patients >= SMALL_CELL else SUPPRESSED
    return {"referrals": shown(report.stages[0].count), "seen": shown(report.stages[3].count), "mcid_rate": rate}


def send_consent_reminders(today: date) -> int:
    """Staff hear once a day how many consents expire within 30 days (a count and a link, no PHI)."""
    from portal.consent.policy import expiring_count

    count = expiring_count(today, 30)
    if not count:
        return 0
    staff = db.session.scalars(
        select(User).where(
            User.role.in_([Role.STAFF, Role.ADMIN]), User.is_enabled.is_(True), User.password_hash.is_not(None)
        )
    )
    queued = 0
    for user in staff:
        message = enqueue(
            user.email,
            "consent_expiring",
            count=count,
            link=external_url("consent.expiring"),
            dedupe_key=f"consent-expiring:{today.isoformat()}:{user.public_id}",
        )
        queued += message.id is None
        db.session.flush()
    return queued
