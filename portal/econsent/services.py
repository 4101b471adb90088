"""Every change of the patient consent feature: requests, links, identity checks, signing, withdrawal, texts.

Links are bearer secrets: 32 random bytes (``secrets.token_urlsafe``), of which only the SHA-256 is
stored; the URL carries nothing else, and the landing page moves the link into the (signed) session
cookie and redirects, so the token leaves the address bar at once. An identity check counts its
failures with one atomic UPDATE kept whatever the request answers (a side write, like wrong
passwords), so two wrong tries at once both count, and the fifth locks the link.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import io
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app
from flask_babel import gettext, ngettext
from sqlalchemy import case, func, select, update
from sqlalchemy.orm.attributes import set_committed_value
from werkzeug.datastructures import FileStorage

from portal.accounts.models import User
from portal.audit.services import record, record_access
from portal.consent import services as consent_services
from portal.consent.models import ConsentStatus
from portal.core import uploads
from portal.core.errors import Conflict, UserError
from portal.core.time import now_utc, practice_today
from portal.core.unit_of_work import side_execute
from portal.core.urls import external_url
from portal.econsent import pdf, queries
from portal.econsent.models import (
    OPEN_STATES,
    Channel,
    ConsentAnswer,
    ConsentRequest,
    ConsentText,
    Language,
    LinkPurpose,
    PatientLink,
    RequestState,
    Topic,
)
from portal.econsent.wording import Wording
from portal.extensions import db
from portal.notifications.services import enqueue
from portal.partners.models import Organization
from portal.patients.models import Patient

DEFAULT_LINK_DAYS = 7
DEFAULT_MAX_FAILURES = 5
VERIFICATION_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud over the phone


class EConsentAction(enum.StrEnum):
    """Audit actions of this feature (beside portal.audit's consent.recorded and consent.revoked)."""

    REQUEST_SENT = "consent_request.sent"
    REQUEST_RESENT = "consent_request.resent"
    REQUEST_CANCELLED = "consent_request.cancelled"
    KIOSK_STARTED = "consent_request.kiosk_started"
    LINK_OPENED = "consent_request.opened"
    IDENTITY_CONFIRMED = "consent_request.identity_confirmed"
    IDENTITY_FAILED = "consent_request.identity_failed"
    LINK_LOCKED = "consent_request.link_locked"
    SIGNED = "consent_request.signed"
    DECLINED = "consent_request.declined"
    WITHDRAWN = "consent_request.withdrawn"
    COPY_DOWNLOADED = "consent_request.copy_downloaded"
    TEXT_CHANGED = "consent_text.changed"


class PatientConsentError(UserError):
    """A refusal the page shows beside its form; safe to show (never PHI)."""


class RequestConflict(PatientConsentError, Conflict):
    """Answered, cancelled or changed by someone else first: 409."""


class WordingChanged(RequestConflict):
    """The practice changed the wording while the patient was reading: read it again (409)."""


class LinkDead(RequestConflict):
    """The link no longer works: ``reason`` is "used", "locked" or "expired" (a kind, not wording)."""

    def __init__(self, reason: str):
        super().__init__(gettext("This link no longer works."))
        self.reason = reason


@dataclass(frozen=True)
class PatientActor:
    """The patient, acting through one request's link: no account, named in every audit event."""

    request: ConsentRequest
    id = None
    is_patient = True

    @property
    def audit_detail(self) -> dict:
        return {"actor": "patient", "request": str(self.request.public_id)}


def link_days() -> int:
    return int(current_app.config.get("PATIENT_LINK_DAYS", DEFAULT_LINK_DAYS))


def max_failures() -> int:
    return int(current_app.config.get("PATIENT_LINK_MAX_FAILURES", DEFAULT_MAX_FAILURES))


def token_digest(raw: str) -> bytes:
    return hashlib.sha256(raw.encode()).digest()


def link_url(raw: str) -> str:
    return external_url("patient_consent.open_link", t=raw)


# --- staff: ask, resend, cancel --------------------------------------------------------------


def create_request(
    actor: User,
    patient: Patient,
    *,
    organization: Organization | None,
    clinician: User | None,
    topics: list[Topic],
    consent_expires_on: date | None,
    channel: Channel,
    language: Language,
) -> tuple[ConsentRequest, str]:
    """A new request and its sign link (the raw token, for the QR code or the tablet; e-mailed for EMAIL)."""
    if organization is None:
        raise PatientConsentError("Choose the organization to share with from the list.", field="organization")
    if not topics:
        raise PatientConsentError("Choose at least one thing to ask about.", field="topics")
    if clinician is not None and clinician.organization_id != organization.id:
        raise PatientConsentError("The clinician must belong to the chosen organization.", field="clinician")
    if consent_expires_on is not None and consent_expires_on <= practice_today():
        raise PatientConsentError("The consent must last past today.", field="consent_expires_on")
    if not _phone_digits(patient.phone):
        raise PatientConsentError(
            "There is no phone number on file, so the patient could not confirm who they are. Add one first."
        )
    _check_channel(patient, channel)
    request = ConsentRequest(
        patient_id=patient.id,
        organization_id=organization.id,
        clinician_id=clinician.id if clinician else None,
        consent_expires_on=consent_expires_on,
        channel=channel,
        language=language,
        state=RequestState.SENT,
        created_by_id=actor.id,
        link_expires_at=now_utc(),  # set with the link below
        **{f"asks_{t.value}": t in topics for t in Topic},
    )
    request.public_id = uuid.uuid4()
    db.session.add(request)
    db.session.flush()
    raw = _send_sign_link(request, channel)
    record(
        EConsentAction.REQUEST_SENT,
        actor=actor,
        obj=request,
        patient_id=patient.public_id,
        channel=channel.value,
        topics=",".join(t.value for t in topics),
    )
    return request, raw


def reissue(actor: User, request: ConsentRequest, channel: Channel) -> str:
    """A fresh link (the older one dies): a sign link while the request is open (expired or locked
    included), else a manage link to the signed copy. E-mailed for EMAIL."""
    if request.state is RequestState.CANCELLED:
        raise RequestConflict("This request was cancelled. Start a new one.")
    _check_channel(request.patient, channel)
    if request.state in OPEN_STATES:
        claimed = db.session.execute(
            update(ConsentRequest)
            .where(ConsentRequest.id == request.id, ConsentRequest.state.in_(OPEN_STATES))
            .values(state=RequestState.SENT, channel=channel)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            raise RequestConflict("The patient answered this request meanwhile. Reload the page.")
        set_committed_value(request, "state", RequestState.SENT)
        request.channel = channel
        raw = _send_sign_link(request, channel)
    else:
        raw = _issue_link(request, LinkPurpose.MANAGE, expires_at=None)
        if channel is Channel.EMAIL:
            enqueue(request.patient.email, "patient_consent_copy", link=link_url(raw))
    record(
        EConsentAction.REQUEST_RESENT,
        actor=actor,
        obj=request,
        patient_id=request.patient.public_id,
        channel=channel.value,
    )
    return raw


def start_kiosk(actor: User, request: ConsentRequest, raw: str | None = None) -> PatientLink:
    """The link to open on this device (a fresh one unless ``raw`` was just made): the caller signs
    the staff member out and hands the device to the patient."""
    if raw is None:
        raw = reissue(actor, request, Channel.KIOSK)
    record(EConsentAction.KIOSK_STARTED, actor=actor, obj=request, patient_id=request.patient.public_id)
    return find_link(raw)


def cancel(actor: User, request: ConsentRequest) -> None:
    claimed = db.session.execute(
        update(ConsentRequest)
        .where(ConsentRequest.id == request.id, ConsentRequest.state.in_(OPEN_STATES))
        .values(state=RequestState.CANCELLED, answered_at=now_utc())
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise RequestConflict("Only a request still waiting for the patient can be cancelled.")
    set_committed_value(request, "state", RequestState.CANCELLED)
    _kill_links(request)
    record(EConsentAction.REQUEST_CANCELLED, actor=actor, obj=request, patient_id=request.patient.public_id)


def _check_channel(patient: Patient, channel: Channel) -> None:
    if channel is Channel.EMAIL and not patient.email:
        raise PatientConsentError(
            "There is no e-mail address on file: show a QR code or open it on the tablet instead.", field="channel"
        )


def _send_sign_link(request: ConsentRequest, channel: Channel) -> str:
    expires = now_utc() + timedelta(days=link_days())
    raw = _issue_link(request, LinkPurpose.SIGN, expires_at=expires)
    request.sent_at = now_utc()
    request.link_expires_at = expires
    if channel is Channel.EMAIL:
        # Nothing about the patient: the practice's name (the layout adds it), the link and its life.
        enqueue(request.patient.email, "patient_consent_request", link=link_url(raw), days=link_days())
    return raw


def _issue_link(request: ConsentRequest, purpose: LinkPurpose, *, expires_at: datetime | None) -> str:
    """A new link of this kind; any older unused one dies (only the newest works)."""
    _kill_links(request, purpose)
    raw = secrets.token_urlsafe(32)
    db.session.add(
        PatientLink(request_id=request.id, purpose=purpose, token_digest=token_digest(raw), expires_at=expires_at)
    )
    db.session.flush()
    return raw


def _kill_links(request: ConsentRequest, purpose: LinkPurpose | None = None) -> None:
    query = update(PatientLink).where(PatientLink.request_id == request.id, PatientLink.used_at.is_(None))
    if purpose is not None:
        query = query.where(PatientLink.purpose == purpose)
    db.session.execute(query.values(used_at=now_utc()).execution_options(synchronize_session=False))


def newest_link(request: ConsentRequest, purpose: LinkPurpose) -> PatientLink | None:
    return db.session.scalar(
        select(PatientLink)
        .where(PatientLink.request_id == request.id, PatientLink.purpose == purpose)
        .order_by(PatientLink.id.desc())
        .limit(1)
    )


# --- the patient: open, confirm identity --------------------------------------------------------


def find_link(raw: str) -> PatientLink | None:
    """The link behind a token, alive or not; None for a token nobody issued."""
    if not raw or len(raw) > 100:
        return None
    return queries.link_by_digest(token_digest(raw))


def mark_opened(link: PatientLink) -> None:
    """The first opening moves the request to "opened" (a side write: landing is a GET)."""
    request = link.request
    if link.purpose is LinkPurpose.SIGN:
        side_execute(
            update(ConsentRequest)
            .where(ConsentRequest.id == request.id, ConsentRequest.state == RequestState.SENT)
            .values(state=RequestState.OPENED, opened_at=func.coalesce(ConsentRequest.opened_at, now_utc()))
        )
    record_access(
        EConsentAction.LINK_OPENED,
        actor=PatientActor(request),
        obj=request,
        patient_id=request.patient.public_id,
        purpose=link.purpose.value,
    )


def _phone_digits(phone: str | None) -> str:
    digits = re.sub(r"\D", "", phone or "")
    return digits


def check_identity(link: PatientLink, birth_date: date, phone_last4: str) -> bool:
    """Date of birth and the last four digits of the phone on file. A failure is counted and kept
    whatever the request answers; the last allowed one locks the link (and a sign link's request)."""
    patient = link.request.patient
    on_file = _phone_digits(patient.phone)[-4:]
    # Both compared, always, in constant time: the answer does not tell which part was wrong.
    ok_phone = len(on_file) == 4 and hmac.compare_digest(on_file, phone_last4)
    ok_birth = hmac.compare_digest(patient.birth_date.isoformat(), birth_date.isoformat())
    actor = PatientActor(link.request)
    if ok_phone and ok_birth:
        record_access(EConsentAction.IDENTITY_CONFIRMED, actor=actor, obj=link.request, patient_id=patient.public_id)
        return True
    limit, now = max_failures(), now_utc()
    failures = PatientLink.failures + 1
    side_execute(
        update(PatientLink)
        .where(PatientLink.id == link.id, PatientLink.locked_at.is_(None))
        .values(failures=failures, locked_at=case((failures >= limit, now), else_=None))
    )
    count = link.failures + 1
    set_committed_value(link, "failures", count)
    locked = count >= limit
    if locked:
        set_committed_value(link, "locked_at", now)
        if link.purpose is LinkPurpose.SIGN:
            side_execute(
                update(ConsentRequest)
                .where(
                    ConsentRequest.id == link.request_id,
                    ConsentRequest.state.in_((RequestState.SENT, RequestState.OPENED)),
                )
                .values(state=RequestState.LOCKED)
            )
    record_access(
        EConsentAction.IDENTITY_FAILED,
        actor=actor,
        obj=link.request,
        patient_id=patient.public_id,
        failures=count,
        wrong=",".join(w for w, ok in (("birth_date", ok_birth), ("phone", ok_phone)) if not ok),
    )
    if locked:
        record_access(EConsentAction.LINK_LOCKED, actor=actor, obj=link.request, patient_id=patient.public_id)
    return False


def identity_failed_message(link: PatientLink) -> str:
    left = max(0, max_failures() - link.failures)
    return ngettext(
        "That does not match what we have on file. You have %(num)d try left.",
        "That does not match what we have on file. You have %(num)d tries left.",
        left,
    )


# --- the patient: answer, withdraw ------------------------------------------------------------


def choose_language(link: PatientLink, language: Language) -> None:
    """The patient's choice, remembered on the request (the next link opens in it too)."""
    if link.request.language is not language:
        link.request.language = language


def answer(
    link: PatientLink,
    wording: Wording,
    *,
    shown_digest: str,
    answers: dict[Topic, bool | None],
    signature_name: str,
    confirmed: bool,
) -> ConsentRequest:
    """Record the patient's answers to every topic, signed; a consent when at least one is yes.

    ``wording`` is the text as it reads now; ``shown_digest`` the hash of the text the page showed.
    If they differ the practice changed the wording meanwhile, and nothing is recorded."""
    request = link.request
    _check_alive(link)
    if not hmac.compare_digest((shown_digest or "").encode(), wording.digest.encode()):  # bytes: junk may be non-ASCII
        raise WordingChanged(gettext("The wording changed while you were reading. Please read it again."))
    problems = [t for t in request.topics if answers.get(t) is None]
    if problems:
        raise PatientConsentError(gettext("Choose yes or no for each part."), field=f"answer_{problems[0].value}")
    name = " ".join((signature_name or "").split())
    if not name or not any(ch.isalpha() for ch in name) or len(name) > 200:
        raise PatientConsentError(gettext("Type your full name to sign."), field="signature_name")
    if not confirmed:
        raise PatientConsentError(gettext("Check the box to say you read this page."), field="confirm")
    _claim(link)
    now = now_utc()
    granted = [t for t in request.topics if answers[t]]
    new_state = RequestState.SIGNED if granted else RequestState.DECLINED
    claimed = db.session.execute(
        update(ConsentRequest)
        .where(ConsentRequest.id == request.id, ConsentRequest.state.in_((RequestState.SENT, RequestState.OPENED)))
        .values(state=new_state, answered_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise LinkDead("used")
    # The request keeps the patient's language; the answers keep the text (and language) they read.
    for attribute, value in (("state", new_state), ("answered_at", now)):
        set_committed_value(request, attribute, value)
    request.signature_name = name
    request.text_digest = wording.digest
    request.verification_code = _verification_code()
    for section in wording.sections:
        db.session.add(
            ConsentAnswer(
                request_id=request.id, topic=section.topic, text_id=section.text_id, is_granted=answers[section.topic]
            )
        )
    manage_raw = _issue_link(request, LinkPurpose.MANAGE, expires_at=None)
    manage_url = link_url(manage_raw)
    request.document_id = uuid.uuid4()
    copy = pdf.signed_copy(request, wording, answers, signed_at=now, manage_url=manage_url)
    _store_copy(copy, request)
    actor = PatientActor(request)
    if granted:
        consent = consent_services.record_patient_consent(
            actor,
            request.patient,
            organization=request.organization,
            clinician=request.clinician,
            categories=[c for t in granted for c in t.categories],
            effective_on=practice_today(),
            expires_on=request.consent_expires_on,
            document_id=request.document_id,
        )
        request.consent_id = consent.id
    db.session.flush()
    if request.patient.email:
        enqueue(request.patient.email, "patient_consent_copy", link=manage_url)
    record(
        EConsentAction.SIGNED if granted else EConsentAction.DECLINED,
        actor=actor,
        obj=request,
        patient_id=request.patient.public_id,
        granted=",".join(t.value for t in granted),
        text_digest=wording.digest,
        language=wording.language.value,
    )
    return request


def withdraw(link: PatientLink, *, confirmed: bool):
    """The patient withdraws their consent through the manage link: exactly the staff revocation
    (a new revoked version, effective at once), with the patient as its author. The link dies."""
    if link.purpose is not LinkPurpose.MANAGE:
        raise LinkDead("used")
    _check_alive(link)
    if not confirmed:
        raise PatientConsentError(gettext("Check the box to say you want to stop sharing."), field="confirm")
    request = link.request
    consent = queries.current_consent(request)
    if consent is None or consent.status is ConsentStatus.REVOKED:
        raise RequestConflict(gettext("Nothing is being shared: there is nothing to stop."))
    actor = PatientActor(request)
    revoked = consent_services.revoke(actor, consent, "Withdrawn by the patient through their consent link.")
    _claim(link)
    record(EConsentAction.WITHDRAWN, actor=actor, obj=request, patient_id=request.patient.public_id)
    return revoked


def record_copy_download(request: ConsentRequest, *, by_staff: User | None = None) -> None:
    """The signed copy left the server (to the patient, or to staff): an audited PHI read."""
    record_access(
        EConsentAction.COPY_DOWNLOADED,
        actor=by_staff or PatientActor(request),
        obj=request,
        patient_id=request.patient.public_id,
        by="staff" if by_staff else "patient",
    )


def _check_alive(link: PatientLink) -> None:
    reason = link.dead_reason(now_utc())
    if reason is not None:
        raise LinkDead(reason)


def _claim(link: PatientLink) -> None:
    """Use the link exactly once: of two submissions at once, one wins."""
    claimed = db.session.execute(
        update(PatientLink)
        .where(PatientLink.id == link.id, PatientLink.used_at.is_(None), PatientLink.locked_at.is_(None))
        .values(used_at=now_utc())
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        raise LinkDead("used")
    set_committed_value(link, "used_at", now_utc())


def _verification_code() -> str:
    code = "".join(secrets.choice(VERIFICATION_ALPHABET) for _ in range(10))
    return f"{code[:5]}-{code[5:]}"


def _store_copy(content: bytes, request: ConsentRequest) -> None:
    """Encrypted in the document store, bound to the patient; removed again if the request fails."""
    upload = uploads.CheckedUpload(
        FileStorage(io.BytesIO(content), filename="consent.pdf", content_type="application/pdf"),
        "consent.pdf",
        "application/pdf",
        len(content),
    )
    uploads.store(upload, request.document_id, request.patient.public_id)


# --- admins: the wording -------------------------------------------------------------------------


def change_text(actor: User, topic: Topic, language: Language, *, title: str, body: str) -> ConsentText:
    """A new version of one topic's wording; consents signed on an older version keep theirs."""
    title, body = (title or "").strip(), (body or "").strip()
    if not title or not body:
        raise PatientConsentError("Give both a title and the text.")
    newest = db.session.scalar(
        select(func.max(ConsentText.version)).where(ConsentText.topic == topic, ConsentText.language == language)
    )
    text = ConsentText(
        topic=topic, language=language, version=(newest or 0) + 1, title=title, body=body, changed_by_id=actor.id
    )
    db.session.add(text)
    db.session.flush()
    record(
        EConsentAction.TEXT_CHANGED,
        actor=actor,
        obj=text,
        topic=topic.value,
        language=language.value,
        version=text.version,
    )
    return text
