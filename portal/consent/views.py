"""Consent pages (staff): record and revoke a patient's consent, its signed form, and what expires soon.

The forms sit on the patient's chart (portal/chart); a submission that needs correcting comes
back on a page of its own here, with the messages first.
"""

import uuid

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.audit.services import AuditAction, record_access
from portal.consent import policy, services
from portal.consent.forms import RevokeForm, consent_form
from portal.consent.queries import get_consent_or_404, selected_grantee
from portal.core.errors import UserError
from portal.core.paging import cursor_arg, per_page_arg
from portal.core.permissions import Permission, requires
from portal.core.phi import documents
from portal.core.time import practice_today
from portal.referrals.queries import get_patient_or_404

bp = Blueprint("consent", __name__)


def _chart(patient):
    return redirect(url_for("chart.staff_view", patient_id=patient.public_id))


@bp.post("/staff/patients/<uuid:patient_id>/consents")
@requires(Permission.INTAKE_WORK)
def record_consent(patient_id: uuid.UUID):
    patient = get_patient_or_404(current_user, patient_id)
    form = consent_form(patient)
    status = 422
    if form.validate_on_submit():
        organization, clinician = selected_grantee(form.organization.data, form.clinician.data)
        try:
            if organization is not None and form.needs_confirmation(organization):
                raise services.ConsentError(
                    f"{organization.name} never referred this patient. Choose the referring organization, "
                    "or tick the box to confirm that the patient asked to share with this one.",
                    field="confirm_organization",
                )
            services.record_consent(
                current_user,
                patient,
                organization=organization,
                clinician=clinician,
                categories=form.chosen_categories(),
                effective_on=form.effective_on.data,
                expires_on=form.expires_on.data,
                method=form.chosen_method(),
                witness=form.witness.data,
                document=request.files.get(form.document.name),
            )
        except UserError as exc:  # the consent's rules, or the signed form's upload
            if exc.field == "confirm_organization":
                form.confirm_organization.errors = [exc.message]
            else:
                form.form_errors.append(exc.message)
            status = exc.status
        else:
            flash(f"Consent recorded: shared with {organization.name}.", "success")
            return _chart(patient)
    record_access(
        AuditAction.PHI_READ, actor=current_user, obj=patient, patient_id=patient.public_id, view="consent_form"
    )
    return render_template("consent/record.html", patient=patient, consent_form=form), status


@bp.post("/staff/patients/<uuid:patient_id>/consents/<uuid:consent_id>/revoke")
@requires(Permission.INTAKE_WORK)
def revoke_consent(patient_id: uuid.UUID, consent_id: uuid.UUID):
    patient = get_patient_or_404(current_user, patient_id)
    consent = get_consent_or_404(patient, consent_id)
    form = RevokeForm()
    try:
        if not form.validate_on_submit():
            raise services.ConsentError("Give the reason for the revocation.")
        services.revoke(current_user, consent, form.reason.data)
    except UserError as exc:
        form.form_errors.append(exc.message)
        record_access(
            AuditAction.PHI_READ, actor=current_user, obj=patient, patient_id=patient.public_id, view="consent_revoke"
        )
        return render_template("consent/revoke.html", patient=patient, consent=consent, revoke_form=form), exc.status
    flash("Consent revoked. The referrer no longer sees what it covered.", "success")
    return _chart(patient)


@bp.get("/staff/patients/<uuid:patient_id>/consents/<uuid:consent_id>/document")
@requires(Permission.INTAKE_WORK)
def consent_document(patient_id: uuid.UUID, consent_id: uuid.UUID):
    patient = get_patient_or_404(current_user, patient_id)
    consent = get_consent_or_404(patient, consent_id, with_document=True)
    record_access(
        AuditAction.PHI_READ, actor=current_user, obj=consent, patient_id=patient.public_id, view="consent_document"
    )
    return Response(
        documents().open(consent.document_id, patient.public_id),
        mimetype="application/octet-stream",
        headers={"Content-Disposition": "attachment; filename=signed-consent"},
    )


@bp.get("/staff/consents/expiring")
@requires(Permission.INTAKE_WORK)
def expiring():
    page = policy.expiring_consents(practice_today(), 30, cursor=cursor_arg(), per_page=per_page_arg())
    if page.items:
        record_access(AuditAction.PHI_READ, actor=current_user, view="expiring_consents", rows=len(page.items))
    return render_template("consent/expiring.html", page=page)
