"""Write, submit, approve (by someone else) or return progress updates.

Approval is a conditional UPDATE on (id, state, version): of two approvers acting at
once exactly one changes a row, and only that one writes the release notice.
"""

from datetime import date

from sqlalchemy import func, select, update

from portal.accounts.models import User
from portal.audit.services import AuditAction, record
from portal.consent.models import Category
from portal.consent.policy import may_see
from portal.core.errors import Conflict, UserError
from portal.core.paging import DEFAULT_PER_PAGE, Page, SortKey, paginate
from portal.core.time import now_utc, practice_today
from portal.core.urls import external_url
from portal.extensions import db
from portal.notifications.services import enqueue
from portal.progress.models import UPDATE_CATEGORIES, ProgressUpdate, UpdateState
from portal.referrals.models import Referral


class ProgressError(UserError):
    """A user-facing refusal; safe to show."""


class ProgressConflict(ProgressError, Conflict):
    """Someone else changed it first: 409, reload and try again."""


def write_update(
    author: User, referral: Referral, visit_date: date, category: Category, body: str, submit: bool
) -> ProgressUpdate:
    if category not in UPDATE_CATEGORIES:
        raise ProgressError("Choose progress note or discharge summary.")
    if visit_date > practice_today():
        raise ProgressError("The visit date cannot be in the future.")
    item = ProgressUpdate(
        referral_id=referral.id,
        patient_id=referral.patient_id,
        author_id=author.id,
        visit_date=visit_date,
        category=category,
    )
    item.body = body
    if submit:
        item.state, item.submitted_at = UpdateState.PENDING, now_utc()
    db.session.add(item)
    db.session.flush()
    record(
        AuditAction.UPDATE_WRITTEN,
        actor=author,
        obj=item,
        patient_id=referral.patient.public_id,
        state=item.state.value,
    )
    return item


def revise_update(author: User, item: ProgressUpdate, visit_date: date, body: str, submit: bool) -> None:
    if item.author_id != author.id:
        raise ProgressError("Only the author can change this update.")
    if item.state not in (UpdateState.DRAFT, UpdateState.RETURNED):
        raise ProgressError("This update is no longer a draft.")
    item.visit_date, item.body = visit_date, body
    if submit:
        item.state, item.submitted_at, item.return_note = UpdateState.PENDING, now_utc(), None
    record(
        AuditAction.UPDATE_WRITTEN,
        actor=author,
        obj=item,
        patient_id=item.referral.patient.public_id,
        state=item.state.value,
    )


def _decide(approver: User, item: ProgressUpdate, expected_version: int, **values) -> None:
    if item.author_id == approver.id:
        raise ProgressError("You wrote this update; another staff member must approve it.")
    result = db.session.execute(
        update(ProgressUpdate)
        .where(
            ProgressUpdate.id == item.id,
            ProgressUpdate.state == UpdateState.PENDING,
            ProgressUpdate.version == expected_version,
        )
        .values(version=ProgressUpdate.version + 1, updated_at=now_utc(), **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise ProgressConflict("Someone else has already handled this update. Reload to see what changed.")
    db.session.refresh(item)


def approve(approver: User, item: ProgressUpdate, expected_version: int) -> None:
    _decide(
        approver, item, expected_version, state=UpdateState.RELEASED, approver_id=approver.id, released_at=now_utc()
    )
    referral = item.referral
    record(AuditAction.UPDATE_RELEASED, actor=approver, obj=item, patient_id=referral.patient.public_id)
    clinician = referral.clinician
    # Only tell the referrer about what the consent lets them open; the notice holds no PHI.
    if may_see(clinician, referral.patient_id, item.category):
        enqueue(
            clinician.email,
            "update_available",
            dedupe_key=f"update:{item.public_id}",
            reference=referral.reference,
            link=external_url("chart.partner_view", patient_id=referral.patient.public_id),
        )


def return_to_author(approver: User, item: ProgressUpdate, expected_version: int, note: str) -> None:
    if not note:
        raise ProgressError("Say what the author should change.")
    _decide(approver, item, expected_version, state=UpdateState.RETURNED, approver_id=approver.id)
    item.return_note = note
    record(AuditAction.UPDATE_RETURNED, actor=approver, obj=item, patient_id=item.referral.patient.public_id)


def _awaiting(user: User):
    return (ProgressUpdate.state == UpdateState.PENDING) & (ProgressUpdate.author_id != user.id)


APPROVAL_ORDER = (
    SortKey(ProgressUpdate.submitted_at, lambda u: u.submitted_at),
    SortKey(ProgressUpdate.id, lambda u: u.id),
)


def approval_queue(user: User, *, cursor: str | None = None, per_page: int = DEFAULT_PER_PAGE) -> Page[ProgressUpdate]:
    """Updates waiting for approval that this user may approve (not their own), oldest first."""
    return paginate(
        select(ProgressUpdate).where(_awaiting(user)),
        APPROVAL_ORDER,
        listing="approvals",
        cursor=cursor,
        per_page=per_page,
    )


def approval_count(user: User) -> int:
    return db.session.scalar(select(func.count()).select_from(ProgressUpdate).where(_awaiting(user)))
