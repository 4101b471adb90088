"""The patient's chart for staff and for the referring partner, and the accounting of disclosures."""

import uuid

from flask import Blueprint, render_template, request
from flask_login import current_user

from portal.audit.models import AuditEvent
from portal.audit.services import AuditAction, record_access
from portal.chart.queries import csv_rows, disclosures_of
from portal.consent import policy
from portal.consent.forms import RevokeForm, consent_form
from portal.consent.models import Category
from portal.consent.services import record_disclosure
from portal.core.csv import csv_download
from portal.core.paging import SortKey, cursor_arg, paginate, per_page_arg
from portal.core.permissions import Permission, requires
from portal.core.time import practice_today
from portal.outcomes.charts import episode_charts
from portal.outcomes.queries import scores_for_patient
from portal.progress.forms import DecisionForm, ReviseForm, update_form
from portal.progress.queries import patient_updates, updates_for_patient
from portal.referrals.queries import get_patient_or_404, patient_referrals

bp = Blueprint("chart", __name__)


@bp.get("/staff/patients/<uuid:patient_id>")
@requires(Permission.INTAKE_WORK)
def staff_view(patient_id: uuid.UUID):
    patient = get_patient_or_404(current_user, patient_id)
    record_access(
        AuditAction.PHI_READ, actor=current_user, obj=patient, patient_id=patient.public_id, view="staff_patient"
    )
    return render_template(
        "chart/staff.html",
        patient=patient,
        referrals=patient_referrals(patient, current_user),
        updates=patient_updates(patient.id),
        today=practice_today(),
        consents=policy.current_consents(patient.id),
        consent_form=consent_form(patient),
        outcome_charts=episode_charts(scores_for_patient(current_user, patient.id)),
        update_form=update_form(patient),
        revoke_form=RevokeForm(),
        decision_form=DecisionForm(),
        revise_form=ReviseForm(),
    )


@bp.get("/partner/patients/<uuid:patient_id>")
@requires(Permission.REFERRALS_FOLLOW)
def partner_view(patient_id: uuid.UUID):
    """Released updates only where today's consent covers this organization (or clinician)."""
    patient = get_patient_or_404(current_user, patient_id)
    updates = updates_for_patient(current_user, patient.id)
    scores = scores_for_patient(current_user, patient.id)  # consent-gated inside the query
    record_access(
        AuditAction.PHI_READ, actor=current_user, obj=patient, patient_id=patient.public_id, view="partner_patient"
    )
    for item in [*updates, *scores]:  # the accounting of disclosures is built from these
        record_disclosure(current_user, item, patient.public_id)
    return render_template(
        "chart/partner.html",
        patient=patient,
        referrals=patient_referrals(patient, current_user),
        updates=updates,
        outcome_charts=episode_charts(scores),
        # What the empty states say depends on whether a consent in effect today shares it (issue 15).
        shares_updates=bool(updates) or any(policy.may_see(current_user, patient.id, c) for c in UPDATE_CATEGORIES),
        shares_scores=bool(scores) or policy.may_see(current_user, patient.id, Category.OUTCOME_SCORES),
    )


UPDATE_CATEGORIES = (Category.PROGRESS_NOTES, Category.DISCHARGE_SUMMARY)

DISCLOSURE_ORDER = (
    SortKey(AuditEvent.occurred_at, lambda row: row[0].occurred_at, descending=True),
    SortKey(AuditEvent.id, lambda row: row[0].id, descending=True),
)


@bp.get("/staff/patients/<uuid:patient_id>/disclosures")
@requires(Permission.INTAKE_WORK)
def disclosures(patient_id: uuid.UUID):
    """HIPAA 164.528: who outside the practice saw which released information, and when."""
    patient = get_patient_or_404(current_user, patient_id)
    query = disclosures_of(patient)
    if request.args.get("format") == "csv":
        record_access(AuditAction.DISCLOSURES_EXPORTED, actor=current_user, obj=patient, patient_id=patient.public_id)
        return csv_download(
            "disclosures",
            ["time", "recipient", "recipient_email", "organization", "object_type", "object_id", "category"],
            csv_rows(query),
        )
    page = paginate(
        query, DISCLOSURE_ORDER, listing="disclosures", cursor=cursor_arg(), per_page=per_page_arg(), scalars=False
    )
    record_access(
        AuditAction.PHI_READ, actor=current_user, obj=patient, patient_id=patient.public_id, view="disclosures"
    )
    return render_template("chart/disclosures.html", patient=patient, page=page)
