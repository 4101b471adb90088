"""Read side of the workspace: the partner list, an organization's history, events and resources."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import case, false, func, select

from portal.accounts.models import User
from portal.core.paging import DEFAULT_PER_PAGE, MAX_PER_PAGE, Page, SortKey, paginate
from portal.core.permissions import Role
from portal.core.time import now_utc, practice_day_start, practice_zone
from portal.extensions import db
from portal.partners.models import Organization, OrganizationKind, RelationshipStatus
from portal.relationships.models import Contact, Event, RelationshipOwner, Resource, Rsvp, Touchpoint

WINDOW_DAYS = 90


# --- referral counts ------------------------------------------------------------------------
# The only place the workspace reads referrals: point these two columns elsewhere if the
# referral model changes.


def _referral_columns():
    from portal.referrals.models import Referral

    return Referral.organization_id, Referral.submitted_at


def referral_window_counts(org_ids: list[int], today: date) -> dict[int, tuple[int, int]]:
    """{organization id: (referrals in the last 90 days, in the 90 days before that)}."""
    if not org_ids:
        return {}
    org_col, at = _referral_columns()
    end = practice_day_start(today + timedelta(days=1))
    middle = end - timedelta(days=WINDOW_DAYS)
    start = middle - timedelta(days=WINDOW_DAYS)
    rows = db.session.execute(
        select(org_col, func.sum(case((at >= middle, 1), else_=0)), func.sum(case((at < middle, 1), else_=0)))
        .where(org_col.in_(org_ids), at >= start, at < end)
        .group_by(org_col)
    ).all()
    return {org_id: (int(current or 0), int(previous or 0)) for org_id, current, previous in rows}


def monthly_referrals(org_id: int, today: date, months: int = 12) -> list[tuple[str, int]]:
    """Referrals per calendar month (practice time zone), oldest first, the current month last."""
    zone = practice_zone()
    keys = []
    year, month = today.year, today.month
    for _ in range(months):
        keys.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    keys.reverse()
    first = datetime(keys[0][0], keys[0][1], 1, tzinfo=zone)
    org_col, at = _referral_columns()
    counts = Counter()
    for (value,) in db.session.execute(select(at).where(org_col == org_id, at >= first)):
        local = value.astimezone(zone)
        counts[(local.year, local.month)] += 1
    return [(date(y, m, 1).strftime("%b %Y"), counts[(y, m)]) for y, m in keys]


def month_axis_labels(points: list[tuple[str, int]]) -> tuple[str, ...]:
    """ "Dec 2025" -> "Dec" under the bar, with the year below the first bar and each January."""
    labels = []
    for i, (label, _) in enumerate(points):
        month, year = label.split()
        labels.append(f"{month}\n{year}" if i == 0 or month == "Jan" else month)
    return tuple(labels)


# --- the partner list -----------------------------------------------------------------------

SORTS = ("name", "kind", "status", "owner", "last_touchpoint", "next_check_in", "referrals")


@dataclass
class ListFilters:
    kind: str = ""
    status: str = ""
    owner: str = ""  # "", "me", "none" or a staff member's public id
    q: str = ""
    sort: str = "name"
    descending: bool = False

    @classmethod
    def from_args(cls, args) -> ListFilters:
        f = cls(
            kind=args.get("kind", ""),
            status=args.get("status", ""),
            owner=args.get("owner", ""),
            q=args.get("q", "").strip()[:100],
            sort=args.get("sort", "name"),
            descending=args.get("dir") == "desc",
        )
        if f.kind not in {k.value for k in OrganizationKind}:
            f.kind = ""
        if f.status not in {s.value for s in RelationshipStatus}:
            f.status = ""
        if f.sort not in SORTS:
            f.sort = "name"
        return f

    def as_args(self, **changes) -> dict:
        values = {
            "kind": self.kind,
            "status": self.status,
            "owner": self.owner,
            "q": self.q,
            "sort": self.sort,
            "dir": "desc" if self.descending else "asc",
            **changes,
        }
        return {k: v for k, v in values.items() if v}


@dataclass
class PartnerRow:
    organization: Organization
    owner: User | None
    last_touchpoint: date | None
    referrals: int
    previous: int

    @property
    def trend(self) -> str:
        if self.referrals > self.previous:
            return "up"
        return "down" if self.referrals < self.previous else "flat"


def _window_counts_subquery(today: date):
    """Per organization: referrals in the last 90 days, and in the 90 days before (as in referral_window_counts)."""
    org_col, at = _referral_columns()
    end = practice_day_start(today + timedelta(days=1))
    middle = end - timedelta(days=WINDOW_DAYS)
    start = middle - timedelta(days=WINDOW_DAYS)
    return (
        select(
            org_col.label("organization_id"),
            func.sum(case((at >= middle, 1), else_=0)).label("current"),
            func.sum(case((at < middle, 1), else_=0)).label("previous"),
        )
        .where(at >= start, at < end)
        .group_by(org_col)
        .subquery()
    )


def _nullable_key(expression, value_of, empty, descending: bool) -> list[SortKey]:
    """Empty values last in either direction: sort on "is empty" first, then on the value."""

    def value(row):
        found = value_of(row)
        return empty if found is None else found

    return [
        SortKey(case((expression.is_(None), 1), else_=0), lambda row: 1 if value_of(row) is None else 0),
        SortKey(func.coalesce(expression, empty), value, descending=descending),
    ]


def partner_page(
    filters: ListFilters, actor: User, today: date, *, cursor: str | None = None, per_page: int = DEFAULT_PER_PAGE
) -> Page[PartnerRow]:
    """One page of the partner list, filtered and sorted in SQL (empty values last), name as the tie-break."""
    last = (
        select(Touchpoint.organization_id, func.max(Touchpoint.occurred_on).label("last"))
        .group_by(Touchpoint.organization_id)
        .subquery()
    )
    counts = _window_counts_subquery(today) if filters.sort == "referrals" else None
    columns = [Organization, User, last.c.last]
    if counts is not None:
        columns += [func.coalesce(counts.c.current, 0), func.coalesce(counts.c.previous, 0)]
    query = (
        select(*columns)
        .outerjoin(RelationshipOwner, RelationshipOwner.organization_id == Organization.id)
        .outerjoin(User, User.id == RelationshipOwner.owner_id)
        .outerjoin(last, last.c.organization_id == Organization.id)
    )
    if counts is not None:
        query = query.outerjoin(counts, counts.c.organization_id == Organization.id)
    if filters.kind:
        query = query.where(Organization.kind == OrganizationKind(filters.kind))
    if filters.status:
        query = query.where(Organization.relationship_status == RelationshipStatus(filters.status))
    if filters.q:
        query = query.where(func.lower(Organization.name).contains(filters.q.lower(), autoescape=True))
    if filters.owner == "me":
        query = query.where(RelationshipOwner.owner_id == actor.id)
    elif filters.owner == "none":
        query = query.where(RelationshipOwner.owner_id.is_(None))
    elif filters.owner:
        owner_id = _uuid_or_none(filters.owner)
        query = query.where(User.public_id == owner_id) if owner_id else query.where(false())
    down = filters.descending
    by_name = [
        SortKey(func.lower(Organization.name), lambda row: row[0].name.lower()),
        SortKey(Organization.id, lambda row: row[0].id),
    ]
    first = {
        "name": [SortKey(func.lower(Organization.name), lambda row: row[0].name.lower(), descending=down)],
        "kind": [SortKey(Organization.kind, lambda row: row[0].kind, descending=down)],
        "status": [SortKey(Organization.relationship_status, lambda row: row[0].relationship_status, descending=down)],
        "owner": _nullable_key(func.lower(User.full_name), lambda row: row[1] and row[1].full_name.lower(), "", down),
        "last_touchpoint": _nullable_key(last.c.last, lambda row: row[2], date(1, 1, 1), down),
        "next_check_in": _nullable_key(
            Organization.next_check_in, lambda row: row[0].next_check_in, date(1, 1, 1), down
        ),
        "referrals": [SortKey(func.coalesce(counts.c.current, 0), lambda row: row[3], descending=down)]
        if counts is not None
        else [],
    }[filters.sort]
    listing = f"partners:{filters.sort}:{'desc' if down else 'asc'}"
    page = paginate(query, first + by_name, listing=listing, cursor=cursor, per_page=per_page, scalars=False)
    if counts is None:
        window = referral_window_counts([row[0].id for row in page.items], today)
        page.items = [
            PartnerRow(org, owner, last_on, *window.get(org.id, (0, 0))) for org, owner, last_on in page.items
        ]
    else:
        page.items = [
            PartnerRow(org, owner, last_on, current, previous) for org, owner, last_on, current, previous in page.items
        ]
    return page


def partner_rows(filters: ListFilters, actor: User, today: date) -> list[PartnerRow]:
    """The first hundred rows of the partner list (the page shows 25 at a time: partner_page)."""
    return partner_page(filters, actor, today, per_page=MAX_PER_PAGE).items


def staff_members() -> list[User]:
    return list(
        db.session.scalars(
            select(User).where(User.role.in_([Role.STAFF, Role.ADMIN]), User.is_enabled).order_by(User.full_name)
        )
    )


# --- one organization -----------------------------------------------------------------------


def get_organization_or_404(public_id: uuid.UUID) -> Organization:
    return db.first_or_404(select(Organization).where(Organization.public_id == public_id))


def owner_of(org: Organization) -> User | None:
    row = db.session.get(RelationshipOwner, org.id)
    return row.owner if row else None


def contacts_of(org: Organization) -> list[Contact]:
    return list(
        db.session.scalars(
            select(Contact).where(Contact.organization_id == org.id).order_by(Contact.is_primary.desc(), Contact.name)
        )
    )


def touchpoints_of(org: Organization, limit: int = 100) -> list[Touchpoint]:
    return list(
        db.session.scalars(
            select(Touchpoint)
            .where(Touchpoint.organization_id == org.id)
            .order_by(Touchpoint.occurred_on.desc(), Touchpoint.id.desc())
            .limit(limit)
        )
    )


# --- events and resources -------------------------------------------------------------------


def events_for_staff(now: datetime | None = None) -> list[Event]:
    """Upcoming events soonest first, then past ones most recent first."""
    since = (now or now_utc()) - timedelta(days=1)
    upcoming = db.session.scalars(select(Event).where(Event.starts_at >= since).order_by(Event.starts_at))
    past = db.session.scalars(select(Event).where(Event.starts_at < since).order_by(Event.starts_at.desc()))
    return [*upcoming, *past]


def upcoming_events_for_partners(now: datetime | None = None) -> list[Event]:
    """Published events that have not ended (taken as: started less than a day ago)."""
    since = (now or now_utc()) - timedelta(days=1)
    return list(
        db.session.scalars(select(Event).where(Event.is_published, Event.starts_at >= since).order_by(Event.starts_at))
    )


def get_event_or_404(public_id: uuid.UUID, *, published_only: bool) -> Event:
    query = select(Event).where(Event.public_id == public_id)
    if published_only:
        query = query.where(Event.is_published)
    return db.first_or_404(query)


def rsvps_of(event: Event) -> list[Rsvp]:
    return list(db.session.scalars(select(Rsvp).where(Rsvp.event_id == event.id).order_by(Rsvp.responded_at)))


def rsvp_counts(events: list[Event]) -> dict[int, int]:
    from portal.relationships.models import RsvpResponse

    ids = [e.id for e in events]
    if not ids:
        return {}
    return dict(
        db.session.execute(
            select(Rsvp.event_id, func.count())
            .where(Rsvp.event_id.in_(ids), Rsvp.response == RsvpResponse.GOING)
            .group_by(Rsvp.event_id)
        ).all()
    )


def responses_of(user: User) -> dict[int, Rsvp]:
    return {r.event_id: r for r in db.session.scalars(select(Rsvp).where(Rsvp.user_id == user.id))}


def get_rsvp_or_404(event: Event, public_id: uuid.UUID) -> Rsvp:
    return db.first_or_404(select(Rsvp).where(Rsvp.event_id == event.id, Rsvp.public_id == public_id))


def resources(*, published_only: bool) -> list[Resource]:
    query = select(Resource).order_by(Resource.created_at.desc())
    if published_only:
        query = query.where(Resource.is_published)
    return list(db.session.scalars(query))


def get_resource_or_404(public_id: uuid.UUID, *, published_only: bool) -> Resource:
    query = select(Resource).where(Resource.public_id == public_id)
    if published_only:
        query = query.where(Resource.is_published)
    return db.first_or_404(query)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
