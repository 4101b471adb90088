"""The practice's side: intake queue, referral work-up, lifecycle, duplicates, licensure."""

import uuid
from datetime import datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from portal.audit.services import AuditAction, record_access
from portal.core.errors import UserError
from portal.core.forms import form_page
from portal.core.paging import Page, cursor_arg, per_page_arg
from portal.core.permissions import Permission, requires
from portal.core.time import practice_to_utc
from portal.core.uploads import UploadError
from portal.referrals import licensure, queries, services
from portal.referrals.common import audit_read, lookup_page, send_attachment
from portal.referrals.forms import DuplicateForm, LicenseForm, LookupForm, NoteForm, TransitionForm
from portal.referrals.lifecycle import TRANSITIONS, Status
from portal.referrals.models import AppointmentMode, LicenseKind
from portal.referrals.telehealth import telehealth_eligibility

bp = Blueprint("intake", __name__, url_prefix="/staff/referrals")
licensure_bp = Blueprint("licensure", __name__, url_prefix="/admin/licensure")


@bp.get("/")
@requires(Permission.INTAKE_WORK)
def queue():
    status = Status(request.args["status"]) if request.args.get("status") in set(Status) else Status.SUBMITTED
    urgent = request.args.get("urgent") == "1"  # staff Today's "urgent" links here
    search = request.args.get("reference", "").strip()[:32]
    reference = queries.normalise_reference(search) if search else None
    if search and reference is None:
        page = Page(items=[], per_page=per_page_arg())
    else:  # a reference names one referral, whatever its status
        page = queries.intake_queue(
            current_user, status, urgent=urgent, reference=reference, cursor=cursor_arg(), per_page=per_page_arg()
        )
    if page.items:
        record_access(AuditAction.PHI_READ, actor=current_user, view="intake_queue", rows=len(page.items))
    return render_template(
        "intake/queue.html",
        page=page,
        status=status,
        urgent=urgent,
        search=search,
        counts=queries.status_counts(current_user),
        lookup_form=LookupForm(),
    )


def _transition_form(referral) -> TransitionForm:
    form = TransitionForm()
    form.target.choices = [SelectChoice(t.target.value, t.action) for t in TRANSITIONS[referral.status]]
    return form


def _detail_page(referral, transition_form=None, note_form=None, status=200):
    audit_read(current_user, referral, "staff")
    duplicates = services.duplicate_candidates(referral) if referral.needs_duplicate_review else []
    duplicate_form = DuplicateForm()
    duplicate_form.decision.choices = [SelectChoice("keep", "Keep as a separate patient")] + [
        SelectChoice(str(p.public_id), f"Link to existing patient {str(p.public_id)[:8]}") for p in duplicates
    ]
    return render_template(
        "intake/detail.html",
        referral=referral,
        transitions=TRANSITIONS[referral.status],
        transition_form=transition_form or _transition_form(referral),
        note_form=note_form or NoteForm(),
        duplicates=duplicates,
        duplicate_form=duplicate_form,
        telehealth=telehealth_eligibility(referral.patient.us_state),
    ), status


@bp.get("/<uuid:referral_id>")
@requires(Permission.INTAKE_WORK)
def detail(referral_id: uuid.UUID):
    return _detail_page(queries.get_referral_or_404(current_user, referral_id))


@bp.post("/<uuid:referral_id>/status")
@requires(Permission.INTAKE_WORK)
def change_status(referral_id: uuid.UUID):
    referral = queries.get_referral_or_404(current_user, referral_id)
    form = _transition_form(referral)
    status = 422
    if form.validate_on_submit():
        try:
            services.change_status(
                current_user,
                referral,
                Status(form.target.data),
                note=form.note.data,
                first_visit_at=_practice_time_to_utc(form.first_visit_at.data),
                mode=AppointmentMode(form.appointment_mode.data) if form.appointment_mode.data else None,
                expected_version=_int(request.form.get("version")),
            )
        except UserError as exc:  # shown on the field it is about (the date, the mode, the reason), else the status
            fields = {
                "note": form.note,
                "first_visit_at": form.first_visit_at,
                "appointment_mode": form.appointment_mode,
            }
            fields.get(exc.field, form.target).errors.append(exc.message)
            status = exc.status  # 409 when someone else changed the referral first
        else:
            flash(f"Referral {referral.reference} is now {referral.status.label.lower()}.", "success")
            return redirect(url_for("intake.detail", referral_id=referral.public_id))
    if not form.errors:
        form.target.errors.append("Choose one of the listed changes.")
    return _detail_page(referral, transition_form=form, status=status)


@bp.post("/<uuid:referral_id>/notes")
@requires(Permission.INTAKE_WORK)
def add_note(referral_id: uuid.UUID):
    referral = queries.get_referral_or_404(current_user, referral_id)
    form = NoteForm()
    if form.validate_on_submit():
        try:
            services.add_note(current_user, referral, form.note.data, request.files.getlist(form.attachments.name))
        except (UploadError, services.ReferralError) as exc:
            form.attachments.errors.append(str(exc))
        else:
            flash("Added to the referral's timeline.", "success")
            return redirect(url_for("intake.detail", referral_id=referral.public_id))
    return _detail_page(referral, note_form=form, status=422)


@bp.post("/<uuid:referral_id>/duplicate")
@requires(Permission.INTAKE_WORK)
def resolve_duplicate(referral_id: uuid.UUID):
    referral = queries.get_referral_or_404(current_user, referral_id)
    try:
        services.resolve_duplicate(current_user, referral, request.form.get("decision", ""))
    except services.ReferralError as exc:
        flash(str(exc), "error")
        return _detail_page(referral, status=422)
    flash("Duplicate review recorded.", "success")
    return redirect(url_for("intake.detail", referral_id=referral.public_id))


@bp.get("/<uuid:referral_id>/attachments/<uuid:attachment_id>")
@requires(Permission.INTAKE_WORK)
def attachment(referral_id: uuid.UUID, attachment_id: uuid.UUID):
    return send_attachment(current_user, queries.get_attachment_or_404(current_user, referral_id, attachment_id))


@bp.post("/lookup")
@requires(Permission.INTAKE_WORK)
def lookup():
    return lookup_page("intake.detail", "intake.lookup")


def _practice_time_to_utc(value: datetime | None) -> datetime | None:
    """The form's date-time is the practice's wall clock; store UTC."""
    if value is None:
        return None
    return practice_to_utc(value)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- licensure (admin) -----------------------------------------------------------------


@licensure_bp.route("/", methods=["GET", "POST"])
@requires(Permission.LICENSURE_MANAGE)
def index():
    form = LicenseForm()
    if form.validate_on_submit():
        license_ = licensure.add_license(
            current_user,
            us_state=form.us_state.data,
            kind=LicenseKind(form.kind.data),
            effective_on=form.effective_on.data,
            expires_on=form.expires_on.data,
        )
        flash(f"{license_.kind.label} for {license_.us_state} added.", "success")
        return redirect(url_for("licensure.index"))
    return form_page("intake/licensure.html", form, licenses=licensure.licenses())


@licensure_bp.post("/<uuid:license_id>/delete")
@requires(Permission.LICENSURE_MANAGE)
def delete(license_id: uuid.UUID):
    license_ = licensure.get_license_or_404(license_id)
    licensure.remove_license(current_user, license_)
    flash(f"{license_.kind.label} for {license_.us_state} removed.", "success")
    return redirect(url_for("licensure.index"))
