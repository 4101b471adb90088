"""Progress update pages (staff): write and revise an update, and the approvals queue.

Writing happens on the patient's chart (portal/chart); a submission that needs correcting comes
back on a page of its own here, with the messages first. Nobody approves their own update.
"""

import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.audit.services import AuditAction, record_access
from portal.core.errors import UserError
from portal.core.paging import cursor_arg, per_page_arg
from portal.core.permissions import Permission, requires
from portal.progress import services
from portal.progress.forms import DecisionForm, ReviseForm, update_form
from portal.progress.queries import get_update_or_404
from portal.referrals.queries import get_patient_or_404, get_patient_referral

bp = Blueprint("progress", __name__)


def _chart(patient):
    return redirect(url_for("chart.staff_view", patient_id=patient.public_id))


@bp.post("/staff/patients/<uuid:patient_id>/updates")
@requires(Permission.INTAKE_WORK)
def write_update(patient_id: uuid.UUID):
    patient = get_patient_or_404(current_user, patient_id)
    form = update_form(patient)
    status = 422
    if form.validate_on_submit():
        try:
            services.write_update(
                current_user,
                get_patient_referral(patient, form.referral.data),
                form.visit_date.data,
                form.chosen_category(),
                form.body.data,
                submit=form.action.data != "draft",
            )
        except UserError as exc:
            form.form_errors.append(exc.message)
            status = exc.status
        else:
            flash("Update saved." if form.action.data == "draft" else "Update sent for approval.", "success")
            return _chart(patient)
    record_access(
        AuditAction.PHI_READ, actor=current_user, obj=patient, patient_id=patient.public_id, view="update_form"
    )
    return render_template("progress/write.html", patient=patient, update_form=form), status


@bp.post("/staff/updates/<uuid:update_id>/revise")
@requires(Permission.INTAKE_WORK)
def revise_update(update_id: uuid.UUID):
    item = get_update_or_404(update_id)
    patient = item.referral.patient
    form = ReviseForm()
    try:
        if not form.validate_on_submit():
            raise services.ProgressError(" ".join(e for errs in form.errors.values() for e in errs))
        services.revise_update(
            current_user, item, form.visit_date.data, form.body.data, submit=request.form.get("action") != "draft"
        )
    except UserError as exc:
        form.form_errors.append(exc.message)
        record_access(
            AuditAction.PHI_READ, actor=current_user, obj=item, patient_id=patient.public_id, view="update_revise"
        )
        return render_template("progress/revise.html", patient=patient, item=item, revise_form=form), exc.status
    flash("Update sent for approval.", "success")
    return _chart(patient)


def _approvals_page(status: int = 200):
    page = services.approval_queue(current_user, cursor=cursor_arg(), per_page=per_page_arg())
    if page.items:
        record_access(AuditAction.PHI_READ, actor=current_user, view="approval_queue", rows=len(page.items))
    return render_template("progress/approvals.html", page=page, decision_form=DecisionForm()), status


@bp.get("/staff/approvals")
@requires(Permission.INTAKE_WORK)
def approvals():
    return _approvals_page()


@bp.post("/staff/updates/<uuid:update_id>/approve")
@requires(Permission.INTAKE_WORK)
def approve_update(update_id: uuid.UUID):
    return _decide(update_id, approve=True)


@bp.post("/staff/updates/<uuid:update_id>/return")
@requires(Permission.INTAKE_WORK)
def return_update(update_id: uuid.UUID):
    return _decide(update_id, approve=False)


def _decide(update_id: uuid.UUID, approve: bool):
    item = get_update_or_404(update_id)
    form = DecisionForm()
    valid = form.validate_on_submit()
    # A missing or garbled version is treated like a stale one: "already handled" (409).
    version = form.version.data if valid or not form.version.errors else -1
    try:
        if form.note.errors:
            raise services.ProgressError(" ".join(form.note.errors))
        if approve:
            services.approve(current_user, item, version)
        else:
            services.return_to_author(current_user, item, version, form.note.data)
    except UserError as exc:
        flash(exc.message, "error")
        return _approvals_page(exc.status)
    flash("Update released to the referrer." if approve else "Update returned to its author.", "success")
    return redirect(url_for("progress.approvals"))
