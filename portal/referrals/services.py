"""Referral services: submit, annotate, move through the lifecycle, resolve duplicates.

Each function adds and flushes; the request commits once. Audit and outbox rows are
written here, in the same transaction as the change they describe. Messages carry the
reference number and a link, never PHI.
"""

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.exc import StaleDataError

from portal.accounts.models import User
from portal.audit.services import AuditAction, record
from portal.core import uploads
from portal.core.errors import Conflict, UserError
from portal.core.formatting import local_date
from portal.core.permissions import Role
from portal.core.signals import referral_status_changed
from portal.core.time import now_utc, practice_date, practice_today
from portal.core.urls import external_url
from portal.extensions import db
from portal.notifications.services import enqueue
from portal.patients.models import Patient, find_patients_by_name_and_birth_date
from portal.referrals.lifecycle import PARTNER_CANCELLABLE, IllegalTransition, Status, transition
from portal.referrals.models import (
    AppointmentMode,
    Attachment,
    EventKind,
    Referral,
    ReferralEvent,
    ReferralView,
)
from portal.referrals.submission import ReferralSubmission

CHANGED_MEANWHILE = "Someone else changed this referral a moment ago. Review it and try again."


class ReferralError(UserError):
    """A user-facing refusal; the message is safe to show (no PHI)."""


class ReferralConflict(ReferralError, Conflict):
    """Someone else changed it first: 409, reload and try again."""


def _link(endpoint: str, referral: Referral) -> str:
    return external_url(endpoint, referral_id=referral.public_id)


def _event(
    referral: Referral,
    actor: User | None,
    kind: EventKind,
    note: str | None = None,
    from_status: Status | None = None,
    to_status: Status | None = None,
) -> ReferralEvent:
    event = ReferralEvent(kind=kind, actor_id=actor.id if actor else None, from_status=from_status, to_status=to_status)
    event.note = note or None
    referral.events.append(event)
    return event


def _attach(
    referral: Referral, actor: User, checked: list[uploads.CheckedUpload], uploaded_by: User | None = None
) -> None:
    for upload in checked:
        attachment = Attachment(
            content_type=upload.content_type,
            uploaded_by_id=(uploaded_by or actor).id,
            size_bytes=0,
            bound_patient_id=referral.patient.public_id,
        )
        attachment.public_id = uuid.uuid4()
        attachment.filename = upload.filename
        attachment.size_bytes = uploads.store(upload, attachment.public_id, attachment.bound_patient_id)
        referral.attachments.append(attachment)
        record(AuditAction.ATTACHMENT_UPLOADED, actor=actor, obj=attachment, patient_id=referral.patient.public_id)


def submit_referral(actor: User, submission: ReferralSubmission, files: list) -> Referral:
    """A partner's referral: patient, referral, timeline, attachments, thanks and intake notice.

    actor is a partner user, or an API client acting for its organization (portal.api.smart.ClientActor):
    a client is no user, so the referring clinician is then the submitter of record.
    """
    checked = uploads.check_uploads(files)
    clinician = db.session.scalar(
        select(User).where(User.public_id == submission.clinician, User.organization_id == actor.organization_id)
    )
    if clinician is None:
        raise ReferralError("Choose a referring clinician from your organization.", field="clinician")
    submitter = actor if isinstance(actor, User) else clinician

    person = submission.patient
    duplicates = find_patients_by_name_and_birth_date(person.family_name, person.birth_date)
    patient = Patient(us_state=person.us_state, sex=person.sex, insurance_payer=person.insurance_payer or None)
    patient.given_name = person.given_name
    patient.family_name = person.family_name
    patient.birth_date = person.birth_date
    patient.phone = person.phone
    patient.email = person.email or None
    patient.address = person.address if person.address and any(person.address.values()) else None
    patient.insurance_member_id = person.insurance_member_id or None
    db.session.add(patient)

    first_from_clinician = (
        db.session.scalar(select(Referral.id).where(Referral.clinician_id == clinician.id).limit(1)) is None
    )
    referral = Referral(
        patient=patient,
        organization_id=actor.organization_id,
        clinician_id=clinician.id,
        submitted_by_id=submitter.id,
        clinician_npi=submission.clinician_npi or clinician.npi,
        requested_service=submission.requested_service,
        urgency=submission.urgency,
        visit_preference=submission.visit_preference,
        needs_duplicate_review=bool(duplicates),
    )
    referral.public_id = uuid.uuid4()
    referral.reason = submission.reason
    referral.diagnosis = submission.diagnosis or None
    referral.icd10_codes = submission.icd10_codes
    referral.notes = submission.notes or None
    db.session.add(referral)
    _event(referral, submitter, EventKind.SUBMITTED, to_status=Status.SUBMITTED)
    db.session.flush()
    _attach(referral, actor, checked, uploaded_by=submitter)

    record(
        AuditAction.REFERRAL_SUBMITTED,
        actor=actor,
        obj=referral,
        patient_id=patient.public_id,
        duplicate_candidates=len(duplicates),
    )
    link = _link("referrals.detail", referral)
    enqueue(
        clinician.email,
        "referral_welcome" if first_from_clinician else "referral_thanks",
        dedupe_key=f"referral-thanks:{referral.public_id}",
        reference=referral.reference,
        link=link,
        clinician_name=clinician.full_name,
    )
    for staff in _intake_staff():
        enqueue(
            staff.email,
            "intake_new_referral",
            dedupe_key=f"intake:{referral.public_id}:{staff.public_id}",
            reference=referral.reference,
            urgency=referral.urgency.value,
            link=_link("intake.detail", referral),
        )
    return referral


def _intake_staff() -> list[User]:
    return list(
        db.session.scalars(
            select(User).where(
                User.role.in_([Role.STAFF, Role.ADMIN]), User.is_enabled.is_(True), User.password_hash.is_not(None)
            )
        )
    )


def add_note(actor: User, referral: Referral, note: str | None, files: list) -> None:
    if not referral.status.is_open:
        raise ReferralError("This referral is closed; notes and attachments can no longer be added.")
    existing = sum(a.size_bytes for a in referral.attachments)
    checked = uploads.check_uploads(files, existing_bytes=existing, existing_count=len(referral.attachments))
    if note:
        _event(referral, actor, EventKind.NOTE, note=note)
    if checked:
        _attach(referral, actor, checked)
        _event(
            referral,
            actor,
            EventKind.ATTACHMENT,
            note=f"{len(checked)} attachment{'s' if len(checked) > 1 else ''} added",
        )
    # A note changes no state: bump updated_at (the FHIR Task's lastUpdated) without the version that guards
    # status changes, so two people adding notes at once both succeed instead of one failing at commit.
    db.session.execute(
        update(Referral)
        .where(Referral.id == referral.id)
        .values(updated_at=now_utc())
        .execution_options(synchronize_session=False)
    )
    record(AuditAction.REFERRAL_NOTE_ADDED, actor=actor, obj=referral, patient_id=referral.patient.public_id)


def change_status(
    actor: User,
    referral: Referral,
    target: Status,
    *,
    note: str | None = None,
    first_visit_at: datetime | None = None,
    mode: AppointmentMode | None = None,
    expected_version: int | None = None,
) -> None:
    """Move a referral along its lifecycle; illegal or conflicting moves are refused clearly."""
    if expected_version is not None and expected_version != referral.version:
        raise ReferralConflict(CHANGED_MEANWHILE)
    try:
        step = transition(referral.status, target)
    except IllegalTransition as exc:
        raise ReferralError(str(exc)) from None
    if step.needs_reason and not note:
        raise ReferralError(f"Give a reason to {step.action.lower()} this referral.", field="note")
    if step.needs_appointment:
        if first_visit_at is None:
            raise ReferralError("Enter the first visit's date and time.", field="first_visit_at")
        if mode is None:
            raise ReferralError(
                "Choose whether the first visit is in clinic or by telehealth.", field="appointment_mode"
            )
        if practice_date(first_visit_at) < practice_date(referral.submitted_at):
            raise ReferralError("The first visit cannot be before the referral was sent.", field="first_visit_at")
        referral.first_visit_at, referral.appointment_mode = first_visit_at, mode
    if (
        target is Status.IN_CARE
        and referral.first_visit_at
        and practice_date(referral.first_visit_at) > practice_today()
    ):
        raise ReferralError(
            f"The first visit is on {local_date(referral.first_visit_at)}: start care on or after that day, "
            "or reschedule it first."
        )
    previous = referral.status
    try:
        # A savepoint: losing the race to another writer undoes only this change, not the request.
        with db.session.begin_nested():
            referral.status = target
            referral.status_changed_at = now_utc()
            _event(referral, actor, EventKind.STATUS, note=note, from_status=previous, to_status=target)
    except StaleDataError:
        raise ReferralConflict(CHANGED_MEANWHILE) from None
    record(
        AuditAction.REFERRAL_STATUS_CHANGED,
        actor=actor,
        obj=referral,
        patient_id=referral.patient.public_id,
        from_status=previous.value,
        to_status=target.value,
    )
    # One signal per move, in this transaction (a partner's cancellation comes through here too).
    referral_status_changed.send(referral, previous=previous, target=target)
    recipients = {referral.clinician.email}
    if referral.submitted_by_id != referral.clinician_id and referral.submitted_by is not None:
        recipients.add(referral.submitted_by.email)
    for email in sorted(recipients):
        enqueue(
            email,
            "referral_status_changed",
            reference=referral.reference,
            status_label=target.label,
            link=_link("referrals.detail", referral),
            dedupe_key=f"status:{referral.public_id}:{referral.version}:{email}",
        )


def mark_seen(user: User, referral: Referral) -> None:
    """The partner opened the referral: what happened until now is no longer news to them (one upsert;
    the caller is a GET, so it has called unit_of_work.begin_writing() first)."""
    values = {"user_id": user.id, "referral_id": referral.id, "seen_at": now_utc()}
    insert = postgresql_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(ReferralView).values(**values)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[ReferralView.user_id, ReferralView.referral_id], set_={"seen_at": values["seen_at"]}
        )
    )


def cancel_by_partner(actor: User, referral: Referral, reason: str) -> None:
    if referral.status not in PARTNER_CANCELLABLE:
        raise ReferralError("This referral already has an appointment; call the practice to cancel it.")
    change_status(actor, referral, Status.CANCELLED, note=reason)


def duplicate_candidates(referral: Referral) -> list[Patient]:
    """Other patients with the same last name and birth date (staff only)."""
    patient = referral.patient
    return [
        p for p in find_patients_by_name_and_birth_date(patient.family_name, patient.birth_date) if p.id != patient.id
    ]


def resolve_duplicate(actor: User, referral: Referral, decision: str) -> None:
    """'keep' the new patient record, or link the referral to an existing patient (by public id)."""
    if not referral.needs_duplicate_review:
        raise ReferralError("This referral has no duplicate to review.")
    if decision != "keep":
        target = next((p for p in duplicate_candidates(referral) if str(p.public_id) == decision), None)
        if target is None:
            raise ReferralError("Choose one of the matching patients.")
        referral.patient = target
    referral.needs_duplicate_review = False
    record(
        AuditAction.REFERRAL_DUPLICATE_RESOLVED,
        actor=actor,
        obj=referral,
        patient_id=referral.patient.public_id,
        decision="keep" if decision == "keep" else "linked",
    )
