"""Reading requests, links and the consent texts."""

import uuid

from sqlalchemy import and_, func, select
from sqlalchemy.orm import aliased, raiseload

from portal.consent.models import Consent, ConsentStatus
from portal.core.paging import DEFAULT_PER_PAGE, Page, SortKey, paginate
from portal.econsent.models import (
    OPEN_STATES,
    ConsentRequest,
    ConsentText,
    Language,
    PatientLink,
    Topic,
)
from portal.extensions import db

# --- texts ---------------------------------------------------------------------------------


def current_texts(language: Language) -> dict[Topic, ConsentText]:
    """The newest version of each topic's wording in ``language`` (one statement)."""
    newest = (
        select(ConsentText.topic, func.max(ConsentText.version).label("version"))
        .where(ConsentText.language == language)
        .group_by(ConsentText.topic)
        .subquery()
    )
    rows = db.session.scalars(
        select(ConsentText)
        .join(
            newest,
            and_(ConsentText.topic == newest.c.topic, ConsentText.version == newest.c.version),
        )
        .where(ConsentText.language == language)
    )
    return {t.topic: t for t in rows}


def signed_texts(request: ConsentRequest) -> dict[Topic, ConsentText]:
    """The text versions the patient was shown when they answered (kept on the answers)."""
    return {a.topic: a.text for a in request.answers}


def text_history(topic: Topic, language: Language) -> list[ConsentText]:
    return list(
        db.session.scalars(
            select(ConsentText)
            .where(ConsentText.topic == topic, ConsentText.language == language)
            .order_by(ConsentText.version.desc())
        )
    )


# --- requests ------------------------------------------------------------------------------


def get_request_or_404(public_id: uuid.UUID) -> ConsentRequest:
    """Staff see every patient's requests (the same scope as the patient's chart for staff)."""
    return db.first_or_404(select(ConsentRequest).where(ConsentRequest.public_id == public_id))


def current_consent(request: ConsentRequest) -> Consent | None:
    """The newest version of the consent a signed request produced (revoked or not)."""
    if request.consent_id is None:
        return None
    origin = aliased(Consent)
    return db.session.scalar(
        select(Consent)
        .join(origin, origin.consent_key == Consent.consent_key)
        .where(origin.id == request.consent_id, Consent.superseded_at.is_(None))
    )


def _with_revocation():
    """Requests with whether the consent each produced has been revoked since (outer joins, one statement)."""
    origin, newest = aliased(Consent), aliased(Consent)
    revoked = (newest.status == ConsentStatus.REVOKED).label("revoked")
    return (
        select(ConsentRequest, revoked)
        .outerjoin(origin, origin.id == ConsentRequest.consent_id)
        .outerjoin(newest, and_(newest.consent_key == origin.consent_key, newest.superseded_at.is_(None)))
    )


def requests_of_patient(patient_id: int, limit: int = 20) -> list[tuple[ConsentRequest, bool]]:
    """A patient's newest requests, each with whether its consent was revoked since."""
    rows = db.session.execute(
        _with_revocation()
        .where(ConsentRequest.patient_id == patient_id)
        .order_by(ConsentRequest.created_at.desc(), ConsentRequest.id.desc())
        .limit(limit)
    ).unique()
    return [(r, bool(revoked)) for r, revoked in rows]


OPEN_ORDER = (
    SortKey(ConsentRequest.sent_at, lambda r: r.sent_at, descending=True),
    SortKey(ConsentRequest.id, lambda r: r.id, descending=True),
)


def open_requests(*, cursor: str | None = None, per_page: int = DEFAULT_PER_PAGE) -> Page[ConsentRequest]:
    """Requests waiting for the patient (sent, opened, expired) or for staff (locked), newest sent first.

    Two statements whatever the page: the page with its patient, organization and sender joined, and the
    capped count. ``raiseload`` keeps a template from loading anything else row by row."""
    query = (
        select(ConsentRequest)
        .where(ConsentRequest.state.in_(OPEN_STATES))
        .options(raiseload(ConsentRequest.answers), raiseload(ConsentRequest.clinician))
    )
    return paginate(query, OPEN_ORDER, listing="consent-requests", cursor=cursor, per_page=per_page)


# --- links ---------------------------------------------------------------------------------


def link_by_digest(digest: bytes) -> PatientLink | None:
    return db.session.scalar(select(PatientLink).where(PatientLink.token_digest == digest))


def link_by_public_id(public_id: uuid.UUID) -> PatientLink | None:
    return db.session.scalar(select(PatientLink).where(PatientLink.public_id == public_id))
