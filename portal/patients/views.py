"""Patient pages: the staff work-up (consents, updates) and the partner's consent-gated view."""
import uuid

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectChoice

from portal.audit.services import AuditAction, record_access
from portal.accounts.models import User
from portal.consent import policy
from portal.consent import services as consents
from portal.consent.forms import ConsentForm, RevokeForm
from portal.consent.models import Category, Consent, Method
from portal.core.errors import UserError
from portal.core.paging import cursor_arg, per_page_arg
from portal.core.permissions import Permission, requires
from portal.core.phi import documents
from portal.core.time import practice_today
from portal.core.uploads import UploadError
from portal.extensions import db
from portal.outcomes.charts import episode_charts
from portal.outcomes.queries import scores_for_patient
from portal.partners.models import Organization
from portal.patients.queries import get_patient_or_404
from portal.progress import services as progress
from portal.progress.forms import DecisionForm, ReviseForm, UpdateForm
from portal.progress.models import ProgressUpdate
from portal.progress.queries import updates_for_patient
from portal.referrals.models import Referral

bp = Blueprint("patients", __name__)


# --- staff ------------------------------------------------------------------------------

def _consent_form(patient, form=None) -> ConsentForm:
    form = form or ConsentForm()
    orgs = db.session.scalars(select(Organization).order_by(Organization.name)).all()
    form.organization.choices = [SelectChoice(str(o.public_id), o.name) for o in orgs]
    clinicians = db.session.scalars(select(User).where(User.organization_id.is_not(None), User.is_enabled.is_(True))
                                    .order_by(User.full_name)).all()
    form.clinician.choices = [SelectChoice("", "Whole organization")] + [
        SelectChoice(str(u.public_id), f"{u.full_name} ({u.organization.name})") for u in clinicians]
    return form


def _update_form(patient, form=None) -> UpdateForm:
    form = form or UpdateForm()
    referrals = db.session.scalars(select(Referral).where(Referral.patient_id == patient.id)
                                   .order_by(Referral.submitted_at.desc())).all()
    form.referral.choices = [SelectChoice(str(r.public_id), f"{r.reference} ({r.status.label})") for r in referrals]
    return form


def _staff_page(patient, consent_form=None, update_form=None, status=200):
    record_access(AuditAction.PHI_READ, actor=current_user, obj=patient, patient_id=patient.public_id, view="staff_patient")
    referrals = db.session.scalars(select(Referral).where(Referral.patient_id == patient.id)
                                   .order_by(Referral.submitted_at.desc())).all()
    updates = db.session.scalars(select(ProgressUpdate).where(ProgressUpdate.patient_id == patient.id)
                                 .order_by(ProgressUpdate.visit_date.desc(), ProgressUpdate.id.desc())).all()
    return render_template(
        "patients/staff.html", patient=patient, referrals=referrals, updates=updates, today=practice_today(),
        consents=policy.current_consents(patient.id), consent_form=_consent_form(patient, consent_form),
        outcome_charts=episode_charts(scores_for_patient(current_user, patient.id)),
        update_form=_update_form(patient, update_form), revoke_form=RevokeForm(), decision_form=DecisionForm(),
        revise_form=ReviseForm()), status


@bp.get("/staff/patients/<uuid:patient_id>")
@requires(Permission.INTAKE_WORK)
def staff_view(patient_id: uuid.UUID):
    return _staff_page(get_patient_or_404(current_user, patient_id))


@bp.post("/staff/patients/<uuid:patient_id>/consents")
@requires(Permission.INTAKE_WORK)
def record_consent(patient_id: uuid.UUID):
    patient = get_patient_or_404(current_user, patient_id)
    form = _consent_form(patient)
    if form.validate_on_submit():
        org = db.session.scalar(select(Organization).where(Organization.public_id == uuid.UUID(form.organization.data)))
        clinician = (db.session.scalar(select(User).where(User.public_id == uuid.UUID(form.clinician.data)))
                     if form.clinician.data else None)
        try:
            consents.record_consent(
                current_user, patient, organization=org, clinician=clinician,
                categories=[Category(c) for c in form.categories.data], effective_on=form.effective_on.data,
                expires_on=form.expires_on.data, method=Method(form.method.data), witness=form.witness.data,
                document=request.files.get(form.document.name))
        except UserError as exc:  # the consent's rules, or the signed form's upload
            form.form_errors.append(exc.message)
        else:
            flash(f"Consent recorded: shared with {org.name}.", "success")
            return redirect(url_for("patients.staff_view", patient_id=patient.public_id))
    return _staff_page(patient, consent_form=form, status=422)


@bp.post("/staff/patients/<uuid:patient_id>/consents/<uuid:consent_id>/revoke")
@requires(Permission.INTAKE_WORK)
def revoke_consent(patient_id: uuid.UUID, consent_id: uuid.UUID):
    patient = get_patient_or_404(current_user, patient_id)
    consent = db.first_or_404(select(Consent).where(Consent.public_id == consent_id, Consent.patient_id == patient.id))
    form = RevokeForm()
    try:
        if not form.validate_on_submit():
            raise consents.ConsentError("Give the reason for the revocation.")
        consents.revoke(current_user, consent, form.reason.data)
    except UserError as exc:
        flash(exc.message, "error")
        return _staff_page(patient, status=exc.status)
    flash("Consent revoked. The referrer no longer sees what it covered.", "success")
    return redirect(url_for("patients.staff_view", patient_id=patient.public_id))


@bp.get("/staff/patients/<uuid:patient_id>/consents/<uuid:consent_id>/document")
@requires(Permission.INTAKE_WORK)
def consent_document(patient_id: uuid.UUID, consent_id: uuid.UUID):
    patient = get_patient_or_404(current_user, patient_id)
    consent = db.first_or_404(select(Consent).where(Consent.public_id == consent_id, Consent.patient_id == patient.id,
                                                    Consent.document_id.is_not(None)))
    record_access(AuditAction.PHI_READ, actor=current_user, obj=consent, patient_id=patient.public_id, view="consent_document")
    return Response(documents().open(consent.document_id, patient.public_id), mimetype="application/octet-stream",
                    headers={"Content-Disposition": "attachment; filename=signed-consent"})


@bp.post("/staff/patients/<uuid:patient_id>/updates")
@requires(Permission.INTAKE_WORK)
def write_update(patient_id: uuid.UUID):
    patient = get_patient_or_404(current_user, patient_id)
    form = _update_form(patient)
    if form.validate_on_submit():
        referral = db.session.scalar(select(Referral).where(Referral.public_id == uuid.UUID(form.referral.data),
                                                            Referral.patient_id == patient.id))
        try:
            progress.write_update(current_user, referral, form.visit_date.data, Category(form.category.data),
                                  form.body.data, submit=form.action.data != "draft")
        except progress.ProgressError as exc:
            form.form_errors.append(str(exc))
        else:
            flash("Update saved." if form.action.data == "draft" else "Update sent for approval.", "success")
            return redirect(url_for("patients.staff_view", patient_id=patient.public_id))
    return _staff_page(patient, update_form=form, status=422)


def _update_or_404(update_id: uuid.UUID) -> ProgressUpdate:
    return db.first_or_404(select(ProgressUpdate).where(ProgressUpdate.public_id == update_id))


@bp.post("/staff/updates/<uuid:update_id>/revise")
@requires(Permission.INTAKE_WORK)
def revise_update(update_id: uuid.UUID):
    item = _update_or_404(update_id)
    form = ReviseForm()
    try:
        if not form.validate_on_submit():
            raise progress.ProgressError(" ".join(e for errs in form.errors.values() for e in errs))
        progress.revise_update(current_user, item, form.visit_date.data, form.body.data,
                               submit=request.form.get("action") != "draft")
    except progress.ProgressError as exc:
        flash(str(exc), "error")
        return _staff_page(item.referral.patient, status=422)
    flash("Update sent for approval.", "success")
    return redirect(url_for("patients.staff_view", patient_id=item.referral.patient.public_id))


@bp.get("/staff/approvals")
@requires(Permission.INTAKE_WORK)
def approvals():
    page = progress.approval_queue(current_user, cursor=cursor_arg(), per_page=per_page_arg())
    if page.items:
        record_access(AuditAction.PHI_READ, actor=current_user, view="approval_queue", rows=len(page.items))
    return render_template("patients/approvals.html", page=page, decision_form=DecisionForm())


@bp.post("/staff/updates/<uuid:update_id>/approve")
@requires(Permission.INTAKE_WORK)
def approve_update(update_id: uuid.UUID):
    return _decide(update_id, approve=True)


@bp.post("/staff/updates/<uuid:update_id>/return")
@requires(Permission.INTAKE_WORK)
def return_update(update_id: uuid.UUID):
    return _decide(update_id, approve=False)


def _decide(update_id: uuid.UUID, approve: bool):
    item = _update_or_404(update_id)
    form = DecisionForm()
    valid = form.validate_on_submit()
    # A missing or garbled version is treated like a stale one: "already handled" (409).
    version = form.version.data if valid or not form.version.errors else -1
    try:
        if form.note.errors:
            raise progress.ProgressError(" ".join(form.note.errors))
        if approve:
            progress.approve(current_user, item, version)
        else:
            progress.return_to_author(current_user, item, version, form.note.data)
    except UserError as exc:
        flash(exc.message, "error")
        page = progress.approval_queue(current_user)
        if page.items:
            record_access(AuditAction.PHI_READ, actor=current_user, view="approval_queue", rows=len(page.items))
        return render_template("patients/approvals.html", page=page, decision_form=DecisionForm()), exc.status
    flash("Update released to the referrer." if approve else "Update returned to its author.", "success")
    return redirect(url_for("patients.approvals"))


@bp.get("/staff/consents/expiring")
@requires(Permission.INTAKE_WORK)
def expiring():
    page = policy.expiring_consents(practice_today(), 30, cursor=cursor_arg(), per_page=per_page_arg())
    if page.items:
        record_access(AuditAction.PHI_READ, actor=current_user, view="expiring_consents", rows=len(page.items))
    return render_template("patients/expiring.html", page=page)


# --- partner ----------------------------------------------------------------------------

@bp.get("/partner/patients/<uuid:patient_id>")
@requires(Permission.REFERRALS_FOLLOW)
def partner_view(patient_id: uuid.UUID):
    """Released updates only where today's consent covers this organization (or clinician)."""
    patient = get_patient_or_404(current_user, patient_id)
    referrals = db.session.scalars(select(Referral).where(
        Referral.patient_id == patient.id, Referral.organization_id == current_user.organization_id)
        .order_by(Referral.submitted_at.desc())).all()
    updates = updates_for_patient(current_user, patient.id)
    record_access(AuditAction.PHI_READ, actor=current_user, obj=patient, patient_id=patient.public_id, view="partner_patient")
    scores = scores_for_patient(current_user, patient.id)  # consent-gated inside the query
    for item in [*updates, *scores]:  # the accounting of disclosures is built from these
        record_access(AuditAction.DISCLOSURE, actor=current_user, obj=item, patient_id=patient.public_id,
               category=getattr(item, "category", Category.OUTCOME_SCORES).value,
               organization=current_user.organization.name)
    return render_template("patients/partner.html", patient=patient, referrals=referrals, updates=updates,
                           outcome_charts=episode_charts(scores))
