"""Scoped referral queries: what a user may see is decided here, inside the SQL."""
import re
import uuid
from datetime import date

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import joinedload, load_only, raiseload

from portal.auth.models import User
from portal.core.paging import COUNT_CAP, DEFAULT_PER_PAGE, Page, SortKey, paginate
from portal.core.permissions import Role
from portal.core.validators import parse_uuid
from portal.partners.models import Organization
from portal.extensions import db
from portal.patients.models import Patient
from portal.core.phi import blind_match
from portal.referrals.lifecycle import TERMINAL, Status
from portal.referrals.models import Attachment, Referral, Urgency


def visible_referrals(user: User) -> Select:
    """Partners see their organization's referrals; practice staff see all."""
    query = select(Referral)
    if Role(user.role).is_partner:
        query = query.where(Referral.organization_id == user.organization_id)
    return query


def get_referral_or_404(user: User, public_id: uuid.UUID) -> Referral:
    return db.first_or_404(visible_referrals(user).where(Referral.public_id == public_id))


def get_attachment_or_404(user: User, referral_id: uuid.UUID, attachment_id: uuid.UUID) -> Attachment:
    referral = get_referral_or_404(user, referral_id)
    return db.first_or_404(select(Attachment).where(
        Attachment.referral_id == referral.id, Attachment.public_id == attachment_id))


_REFERENCE = re.compile(r"^(RB-?)?[2-9A-HJ-NP-Z]{1,8}$")

# Newest change first; the id breaks ties, so the order is total and keyset pages are exact.
PARTNER_ORDER = (SortKey(Referral.status_changed_at, lambda r: r.status_changed_at, descending=True),
                 SortKey(Referral.id, lambda r: r.id, descending=True))
# New referrals: urgent first, then oldest first, what the front desk should take next (a short
# list, sorted as it is read). Every other status: most recently changed first, from an index.
_urgent_first = case((Referral.urgency == Urgency.URGENT, 0), else_=1)
INTAKE_ORDER = (SortKey(_urgent_first, lambda r: 0 if r.urgency == Urgency.URGENT else 1),
                SortKey(Referral.submitted_at, lambda r: r.submitted_at),
                SortKey(Referral.id, lambda r: r.id))


def normalise_reference(text: str) -> str | None:
    """'rb-7k2m', 'RB 7K2M' or '7k2m' -> 'RB-7K2M'; None if it cannot be (part of) a reference."""
    compact = re.sub(r"[\s]", "", text or "").upper()
    if not _REFERENCE.match(compact):
        return None
    return "RB-" + compact.removeprefix("RB").removeprefix("-")


def listed(query: Select) -> Select:
    """A referral list row: the columns a list shows, the patient's name and the clinician's,
    in the same statement; anything else a template touches raises instead of costing a query."""
    return query.options(
        load_only(Referral.public_id, Referral.reference, Referral.status, Referral.urgency,
                  Referral.requested_service, Referral.submitted_at, Referral.status_changed_at,
                  Referral.first_visit_at, Referral.needs_duplicate_review, Referral.patient_id,
                  Referral.clinician_id, Referral.organization_id),
        joinedload(Referral.patient).load_only(Patient.public_id, Patient.given_name_ct, Patient.family_name_ct),
        joinedload(Referral.clinician).load_only(User.full_name).raiseload("*"),
        joinedload(Referral.organization).load_only(Organization.name).raiseload("*"),
        raiseload("*"))


def partner_referrals(user: User, *, status: str | None = None, clinician: str | None = None,
                      reference: str | None = None, cursor: str | None = None,
                      per_page: int = DEFAULT_PER_PAGE) -> Page[Referral]:
    query = listed(visible_referrals(user))
    if status in set(Status):
        query = query.where(Referral.status == Status(status))
    elif status == "open":
        query = query.where(Referral.status.not_in(TERMINAL))
    if clinician:
        query = query.where(Referral.clinician_id == select(User.id).where(
            User.public_id == parse_uuid(clinician)).scalar_subquery())
    if reference is not None:
        query = query.where(Referral.reference.startswith(reference, autoescape=True))
    return paginate(query, PARTNER_ORDER, listing="partner-referrals", cursor=cursor, per_page=per_page)


def intake_queue(user: User, status: Status = Status.SUBMITTED, *, cursor: str | None = None,
                 per_page: int = DEFAULT_PER_PAGE) -> Page[Referral]:
    """New referrals urgent first, then oldest first; any other status most recently changed first."""
    query = listed(visible_referrals(user).where(Referral.status == status))
    order = INTAKE_ORDER if status is Status.SUBMITTED else PARTNER_ORDER
    return paginate(query, order, listing=f"intake-queue:{status.value}", cursor=cursor, per_page=per_page)


def _capped_count(query: Select):
    """COUNT(*) of ``query`` that stops reading at COUNT_CAP + 1 rows (shown as "1,000+")."""
    return select(func.count()).select_from(query.with_only_columns(Referral.id).limit(COUNT_CAP + 1).subquery())


def status_counts(user: User) -> dict[Status, int]:
    """Referrals per status, each counted up to COUNT_CAP + 1: one statement whose cost does not grow
    with the table (an index range per status), unlike a GROUP BY over every referral."""
    scope = visible_referrals(user)
    row = db.session.execute(select(*(_capped_count(scope.where(Referral.status == s)).scalar_subquery().label(s.value)
                                      for s in Status))).one()
    return {s: row[i] for i, s in enumerate(Status)}


def urgent_waiting(user: User) -> int:
    return db.session.scalar(_capped_count(visible_referrals(user).where(
        Referral.status == Status.SUBMITTED, Referral.urgency == Urgency.URGENT)))


def lookup_patient_referrals(user: User, family_name: str, birth_date: date) -> list[Referral]:
    """Exact match on last name + date of birth (blind index), within what the user may see."""
    query = (visible_referrals(user).join(Patient, Patient.id == Referral.patient_id)
             .where(blind_match(Patient.name_dob_bidx, family_name, birth_date))
             .order_by(Referral.submitted_at.desc()))
    return list(db.session.scalars(query))


def organization_clinicians(user: User) -> list[User]:
    return list(db.session.scalars(select(User).where(
        User.organization_id == user.organization_id, User.is_enabled.is_(True)).order_by(User.full_name)))
