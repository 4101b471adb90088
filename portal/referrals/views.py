"""The referring partner's referrals: submit one, its attachments, look a patient up.

The partner's home and the referral page (with notes and cancelling) read across features and live
above them, in portal/home/partner_views.py, as routes of this blueprint.
"""

import uuid

from flask import Blueprint, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from portal.core.errors import UserError
from portal.core.forms import form_page
from portal.core.permissions import Permission, requires
from portal.referrals import queries, services
from portal.referrals.codes import suggestions
from portal.referrals.common import lookup_page, send_attachment
from portal.referrals.forms import ReferralForm

bp = Blueprint("referrals", __name__)


def _referral_form() -> ReferralForm:
    form = ReferralForm()
    clinicians = queries.organization_clinicians(current_user)
    form.clinician.choices = [SelectChoice(str(u.public_id), u.full_name) for u in clinicians]
    if not form.is_submitted():
        form.clinician.data = str(current_user.public_id)
        form.clinician_npi.data = current_user.npi or ""
    return form


@bp.route("/partner/referrals/new", methods=["GET", "POST"])
@requires(Permission.REFERRALS_SUBMIT)
def new():
    form = _referral_form()
    status = None
    if form.validate_on_submit():
        try:
            referral = services.submit_referral(
                current_user, form.submission(), request.files.getlist(form.attachments.name)
            )
        except UserError as exc:  # an upload refused (its field; 507 on a full disk), or a clinician not of the org
            form[exc.field or "attachments"].errors.append(exc.message)
            status = exc.status
        else:
            return redirect(url_for("referrals.submitted", referral_id=referral.public_id))
    return form_page("referrals/new.html", form, status=status, suggestions=suggestions())


@bp.get("/partner/referrals/<uuid:referral_id>/submitted")
@requires(Permission.REFERRALS_FOLLOW)
def submitted(referral_id: uuid.UUID):
    referral = queries.get_referral_or_404(current_user, referral_id)
    return render_template("referrals/submitted.html", referral=referral)


@bp.get("/partner/referrals/<uuid:referral_id>/attachments/<uuid:attachment_id>")
@requires(Permission.REFERRALS_FOLLOW)
def attachment(referral_id: uuid.UUID, attachment_id: uuid.UUID):
    return send_attachment(current_user, queries.get_attachment_or_404(current_user, referral_id, attachment_id))


@bp.post("/partner/referrals/lookup")
@requires(Permission.REFERRALS_FOLLOW)
def lookup():
    return lookup_page("referrals.detail", "referrals.lookup")
