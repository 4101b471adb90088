"""Scoped referral queries: what a user may see is decided here, inside the SQL."""

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Select, exists, func, select

from portal.accounts.models import User
from portal.core.errors import UserError
from portal.core.paging import COUNT_CAP, DEFAULT_PER_PAGE, Page, SortKey, paginate
from portal.core.permissions import Role
from portal.core.phi import blind_match
from portal.core.time import now_utc
from portal.core.validators import parse_uuid
from portal.extensions import db
from portal.partners.models import Organization
from portal.patients.models import Patient
from portal.referrals.lifecycle import OPEN, Status
from portal.referrals.models import Attachment, Referral, Service, Urgency


def visible_referrals(user: User) -> Select:
    """Partners see their organization's referrals; practice staff see all."""
    query = select(Referral)
    if Role(user.role).is_partner:
        query = query.where(Referral.organization_id == user.organization_id)
    return query


def visible_patients(user: User) -> Select:
    """Patients the user may open: a partner, those their organization referred (built on visible_referrals)."""
    query = select(Patient)
    if Role(user.role).is_partner:
        query = query.where(
            exists(visible_referrals(user).with_only_columns(Referral.id).where(Referral.patient_id == Patient.id))
        )
    return query


def get_patient_or_404(user: User, public_id: uuid.UUID) -> Patient:
    return db.first_or_404(visible_patients(user).where(Patient.public_id == public_id))


def patient_referrals(patient: Patient, user: User) -> list[Referral]:
    """The patient's referrals the user may see, newest first."""
    return list(
        db.session.scalars(
            visible_referrals(user).where(Referral.patient_id == patient.id).order_by(Referral.submitted_at.desc())
        )
    )


def get_patient_referral(patient: Patient, public_id: str) -> Referral:
    """One of the patient's referrals, by the public id a form posted; a UserError if it is not one."""
    referral = db.session.scalar(
        select(Referral).where(Referral.public_id == parse_uuid(public_id), Referral.patient_id == patient.id)
    )
    if referral is None:
        raise UserError("Choose one of this patient's referrals.", field="referral")
    return referral


def get_referral_or_404(user: User, public_id: uuid.UUID) -> Referral:
    return db.first_or_404(visible_referrals(user).where(Referral.public_id == public_id))


def get_attachment_or_404(user: User, referral_id: uuid.UUID, attachment_id: uuid.UUID) -> Attachment:
    referral = get_referral_or_404(user, referral_id)
    return db.first_or_404(
        select(Attachment).where(Attachment.referral_id == referral.id, Attachment.public_id == attachment_id)
    )


_REFERENCE = re.compile(r"^(RB-?)?[2-9A-HJ-NP-Z]{1,8}$")

# Newest change first; the id breaks ties, so the order is total and keyset pages are exact.
PARTNER_ORDER = (
    SortKey(Referral.status_changed_at, lambda r: r.status_changed_at, descending=True),
    SortKey(Referral.id, lambda r: r.id, descending=True),
)
# New referrals: urgent first ("urgent" sorts after "routine", so urgency descending), then oldest
# first: what the front desk should take next, read in the order of ix_referrals_queue. Every other
# status: most recently changed first, from ix_referrals_status_changed.
INTAKE_ORDER = (
    SortKey(Referral.urgency, lambda r: r.urgency, descending=True),
    SortKey(Referral.submitted_at, lambda r: r.submitted_at),
    SortKey(Referral.id, lambda r: r.id),
)


def normalise_reference(text: str) -> str | None:
    """'rb-7k2m', 'RB 7K2M' or '7k2m' -> 'RB-7K2M'; None if it cannot be (part of) a reference."""
    compact = re.sub(r"[\s]", "", text or "").upper()
    if not _REFERENCE.match(compact):
        return None
    return "RB-" + compact.removeprefix("RB").removeprefix("-")


@dataclass(frozen=True, slots=True)
class ReferralRow:
    """One line of a referral list: what the lists show and nothing more, read as plain columns
    (no ORM objects to build for 25 rows) with the patient's two names decrypted, no other PHI."""

    id: int
    public_id: uuid.UUID
    reference: str
    status: Status
    urgency: Urgency
    requested_service: Service
    submitted_at: datetime
    status_changed_at: datetime
    first_visit_at: datetime | None
    needs_duplicate_review: bool
    patient_public_id: uuid.UUID
    patient_given_name: str
    patient_family_name: str
    clinician_name: str
    organization_name: str

    @property
    def days_open(self) -> int:
        return (now_utc() - self.submitted_at).days

    @property
    def quiet_months(self) -> int | None:
        """Months without any change of an open referral that has gone quiet (STALE_AFTER_DAYS), else None:
        "Open" must not present a referral untouched for 16 months as if it were current."""
        days = (now_utc() - self.status_changed_at).days
        if self.status not in OPEN or days < STALE_AFTER_DAYS:
            return None
        return days * 12 // 365

    @property
    def next_visit_at(self) -> datetime | None:
        """The first visit of a scheduled referral (see ``visit_passed``)."""
        return self.first_visit_at if self.status is Status.SCHEDULED else None

    @property
    def visit_passed(self) -> bool:
        """Scheduled, and the first visit's time has gone by without a move to "in care" or "no-show"."""
        return self.next_visit_at is not None and self.next_visit_at < now_utc()


# An open referral with no change for this long is marked as quiet in the lists (stale, or forgotten).
STALE_AFTER_DAYS = 180

_ROW_COLUMNS = (
    Referral.id,
    Referral.public_id,
    Referral.reference,
    Referral.status,
    Referral.urgency,
    Referral.requested_service,
    Referral.submitted_at,
    Referral.status_changed_at,
    Referral.first_visit_at,
    Referral.needs_duplicate_review,
    Patient.public_id.label("patient_public_id"),
    Patient.given_name_ct,
    Patient.family_name_ct,
    User.full_name.label("clinician_name"),
    Organization.name.label("organization_name"),
)


def listed(query: Select) -> Select:
    """A scoped referral query (visible_referrals) as list rows: one statement, the patient's and the
    clinician's names and the organization's joined in."""
    return (
        query.with_only_columns(*_ROW_COLUMNS)
        .join(Patient, Patient.id == Referral.patient_id)
        .join(User, User.id == Referral.clinician_id)
        .join(Organization, Organization.id == Referral.organization_id)
    )


def _rows(page: Page) -> Page[ReferralRow]:
    name_given, name_family = Patient.given_name, Patient.family_name  # the encrypted fields themselves
    page.items = [
        ReferralRow(
            *row[:10],
            row.patient_public_id,
            name_given.decrypt(Patient, row.patient_public_id, row.given_name_ct),
            name_family.decrypt(Patient, row.patient_public_id, row.family_name_ct),
            row.clinician_name,
            row.organization_name,
        )
        for row in page.items
    ]
    return page


def referral_rows(user: User, ids: list[int]) -> list[ReferralRow]:
    """List rows of these referrals (within what the user may see), in the order of ``ids``: one statement."""
    if not ids:
        return []
    page = _rows(
        Page(
            items=list(db.session.execute(listed(visible_referrals(user).where(Referral.id.in_(ids))))),
            per_page=len(ids),
        )
    )
    by_id = {row.id: row for row in page.items}
    return [by_id[i] for i in ids if i in by_id]


def partner_referrals(
    user: User,
    *,
    status: str | None = None,
    clinician: str | None = None,
    reference: str | None = None,
    among: Select | None = None,
    cursor: str | None = None,
    per_page: int = DEFAULT_PER_PAGE,
) -> Page[ReferralRow]:
    """``among``: a select of referral ids to keep (the partner home's "new for you", built above referrals)."""
    query = visible_referrals(user)
    if status in set(Status):
        query = query.where(Referral.status == Status(status))
    elif status == "open":
        query = query.where(Referral.status.in_(OPEN))
    elif status == "quiet":  # open, and unchanged for STALE_AFTER_DAYS: to follow up or close
        query = query.where(
            Referral.status.in_(OPEN), Referral.status_changed_at < now_utc() - timedelta(days=STALE_AFTER_DAYS)
        )
    if among is not None:
        query = query.where(Referral.id.in_(among))
    if clinician:
        query = query.where(
            Referral.clinician_id == select(User.id).where(User.public_id == parse_uuid(clinician)).scalar_subquery()
        )
    if reference is not None:
        query = query.where(Referral.reference.startswith(reference, autoescape=True))
    return _rows(
        paginate(
            listed(query),
            PARTNER_ORDER,
            listing="partner-referrals",
            cursor=cursor,
            per_page=per_page,
            scalars=False,
            count=query.with_only_columns(Referral.id),
        )
    )


def intake_queue(
    user: User,
    status: Status = Status.SUBMITTED,
    *,
    urgent: bool = False,
    reference: str | None = None,
    cursor: str | None = None,
    per_page: int = DEFAULT_PER_PAGE,
) -> Page[ReferralRow]:
    """New referrals urgent first, then oldest first; any other status most recently changed first.
    ``urgent``: only urgent ones. ``reference`` (normalised): that referral, whatever its status."""
    if reference is not None:
        query = visible_referrals(user).where(Referral.reference.startswith(reference, autoescape=True))
        order, listing = PARTNER_ORDER, "intake-queue:reference"
    else:
        query = visible_referrals(user).where(Referral.status == status)
        if urgent:
            query = query.where(Referral.urgency == Urgency.URGENT)
        order = INTAKE_ORDER if status is Status.SUBMITTED else PARTNER_ORDER
        listing = f"intake-queue:{status.value}{':urgent' if urgent else ''}"
    return _rows(
        paginate(
            listed(query),
            order,
            listing=listing,
            cursor=cursor,
            per_page=per_page,
            scalars=False,
            count=query.with_only_columns(Referral.id),
        )
    )


def _capped_count(query: Select):
    """COUNT(*) of ``query`` that stops reading at COUNT_CAP + 1 rows (shown as "1,000+")."""
    return select(func.count()).select_from(query.with_only_columns(Referral.id).limit(COUNT_CAP + 1).subquery())


def status_counts(user: User) -> dict[Status, int]:
    """Referrals per status, each counted up to COUNT_CAP + 1: one statement whose cost does not grow
    with the table (an index range per status), unlike a GROUP BY over every referral."""
    scope = visible_referrals(user)
    row = db.session.execute(
        select(*(_capped_count(scope.where(Referral.status == s)).scalar_subquery().label(s.value) for s in Status))
    ).one()
    return {s: row[i] for i, s in enumerate(Status)}


def urgent_waiting(user: User) -> int:
    return db.session.scalar(
        _capped_count(
            visible_referrals(user).where(Referral.status == Status.SUBMITTED, Referral.urgency == Urgency.URGENT)
        )
    )


def urgent_referrals(user: User, limit: int = 5) -> list[ReferralRow]:
    """The urgent new referrals to take first (oldest first), as list rows: one statement, from ix_referrals_queue."""
    query = visible_referrals(user).where(Referral.status == Status.SUBMITTED, Referral.urgency == Urgency.URGENT)
    rows = db.session.execute(listed(query).order_by(Referral.submitted_at, Referral.id).limit(limit))
    return _rows(Page(items=list(rows), per_page=limit)).items


def lookup_patient_referrals(user: User, family_name: str, birth_date: date) -> list[Referral]:
    """Exact match on last name + date of birth (blind index), within what the user may see."""
    query = (
        visible_referrals(user)
        .join(Patient, Patient.id == Referral.patient_id)
        .where(blind_match(Patient.name_dob_bidx, family_name, birth_date))
        .order_by(Referral.submitted_at.desc())
    )
    return list(db.session.scalars(query))


def organization_clinicians(user: User) -> list:
    """(public_id, full_name) of the organization's enabled accounts, for choosing a clinician."""
    return list(
        db.session.execute(
            select(User.public_id, User.full_name)
            .where(User.organization_id == user.organization_id, User.is_enabled.is_(True))
            .order_by(User.full_name)
        )
    )
