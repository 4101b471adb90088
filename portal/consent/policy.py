"""The one consent policy: may this partner user see this patient's data of this category today?

Every page and the API ask through these functions; nothing else decides. A consent
counts when it is the newest version of its chain, active, in its period today, grants
the category, and names the user's organization (whole organization, or this clinician).
Revocation and expiry take effect at once: the predicate is evaluated at query time.
"""

from datetime import date, timedelta

from sqlalchemy import ColumnElement, and_, exists, func, or_, select

from portal.accounts.models import User
from portal.consent.models import Category, Consent, ConsentStatus
from portal.core.paging import DEFAULT_PER_PAGE, Page, SortKey, paginate
from portal.core.time import practice_today
from portal.extensions import db


def _current_version():
    """The newest version of its chain (older versions are stamped superseded_at when a newer one is flushed)."""
    return Consent.superseded_at.is_(None)


def consent_in_effect(user: User, category: Category, on: date) -> ColumnElement[bool]:
    """SQL: the patient (Consent.patient_id) has a consent covering user, category and day."""
    return and_(
        _current_version(),
        Consent.status == ConsentStatus.ACTIVE,
        getattr(Consent, f"allows_{category.value}").is_(True),
        Consent.effective_on <= on,
        or_(Consent.expires_on.is_(None), Consent.expires_on >= on),
        Consent.grantee_organization_id == user.organization_id,
        or_(Consent.grantee_user_id.is_(None), Consent.grantee_user_id == user.id),
    )


def permits(user: User, patient_id, category: Category, on: date | None = None):
    """An EXISTS clause for use inside other queries (patient_id: a column or a value)."""
    on = on or practice_today()
    return exists(select(Consent.id).where(Consent.patient_id == patient_id, consent_in_effect(user, category, on)))


def publication_permitted(patient_id, on: date | None = None):
    """EXISTS: a consent in effect today lets the practice publish this patient's success story (any grantee)."""
    on = on or practice_today()
    return exists(
        select(Consent.id).where(
            Consent.patient_id == patient_id,
            _current_version(),
            Consent.status == ConsentStatus.ACTIVE,
            Consent.allows_story_publication.is_(True),
            Consent.effective_on <= on,
            or_(Consent.expires_on.is_(None), Consent.expires_on >= on),
        )
    )


def may_see(user: User, patient_id: int, category: Category, on: date | None = None) -> bool:
    if not user.role.is_partner:
        return False
    return bool(db.session.scalar(select(permits(user, patient_id, category, on))))


def current_consents(patient_id: int) -> list[Consent]:
    """The newest version of every consent chain of a patient, newest first."""
    return list(
        db.session.scalars(
            select(Consent)
            .where(Consent.patient_id == patient_id, _current_version())
            .order_by(Consent.recorded_at.desc())
        )
    )


def _expiring(start: date, days: int):
    return and_(
        _current_version(),
        Consent.status == ConsentStatus.ACTIVE,
        Consent.expires_on.is_not(None),
        Consent.expires_on >= start,
        Consent.expires_on <= start + timedelta(days=days),
    )


EXPIRING_ORDER = (SortKey(Consent.expires_on, lambda c: c.expires_on), SortKey(Consent.id, lambda c: c.id))


def expiring_consents(
    start: date, days: int = 30, *, cursor: str | None = None, per_page: int = DEFAULT_PER_PAGE
) -> Page[Consent]:
    return paginate(
        select(Consent).where(_expiring(start, days)),
        EXPIRING_ORDER,
        listing=f"expiring:{days}",
        cursor=cursor,
        per_page=per_page,
    )


def expiring_count(start: date, days: int = 30) -> int:
    return db.session.scalar(select(func.count()).select_from(Consent).where(_expiring(start, days)))
