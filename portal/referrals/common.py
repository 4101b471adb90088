"""View helpers shared by the partner and staff sides of a referral."""

from flask import Response, stream_with_context
from flask_login import current_user
from werkzeug.http import dump_options_header

from portal.audit.services import AuditAction, record_access
from portal.core.forms import form_page
from portal.core.phi import documents
from portal.referrals.forms import LookupForm
from portal.referrals.models import Attachment, Referral
from portal.referrals.queries import lookup_patient_referrals


def audit_read(actor, referral: Referral, view: str) -> None:
    """Opening a referral shows PHI: that is an audited read."""
    record_access(AuditAction.PHI_READ, actor=actor, obj=referral, patient_id=referral.patient.public_id, view=view)


def lookup_page(detail_endpoint: str, lookup_endpoint: str):
    """Exact last name + date of birth, POSTed so the name never appears in a URL or log."""
    form = LookupForm()
    results = None
    if form.validate_on_submit():
        results = lookup_patient_referrals(current_user, form.family_name.data, form.birth_date.data)
        record_access(AuditAction.PATIENT_LOOKUP, actor=current_user, matches=len(results))
    return form_page(
        "referrals/lookup.html", form, results=results, detail_endpoint=detail_endpoint, lookup_endpoint=lookup_endpoint
    )


def send_attachment(actor, attachment: Attachment) -> Response:
    """Decrypt while streaming; audited; always a download, never rendered inline."""
    record_access(
        AuditAction.ATTACHMENT_DOWNLOADED, actor=actor, obj=attachment, patient_id=attachment.referral.patient.public_id
    )
    chunks = documents().open(attachment.public_id, attachment.bound_patient_id)
    disposition = dump_options_header("attachment", {"filename": attachment.filename})
    return Response(
        stream_with_context(chunks),
        mimetype=attachment.content_type,
        headers={"Content-Disposition": disposition, "Content-Length": str(attachment.size_bytes)},
    )
