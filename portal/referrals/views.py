"""The referring partner's referrals: the home list, submit, follow, annotate, cancel, look up."""

import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from portal.audit.services import AuditAction, record_access
from portal.core.errors import UserError
from portal.core.forms import form_page
from portal.core.paging import Page, cursor_arg, per_page_arg
from portal.core.permissions import Permission, requires
from portal.core.uploads import UploadError
from portal.referrals import queries, services
from portal.referrals.codes import suggestions
from portal.referrals.common import audit_read, lookup_page, send_attachment
from portal.referrals.forms import CancelForm, LookupForm, NoteForm, ReferralForm
from portal.referrals.lifecycle import PARTNER_CANCELLABLE, Status

bp = Blueprint("referrals", __name__)


def _referral_form() -> ReferralForm:
    form = ReferralForm()
    clinicians = queries.organization_clinicians(current_user)
    form.clinician.choices = [SelectChoice(str(u.public_id), u.full_name) for u in clinicians]
    if not form.is_submitted():
        form.clinician.data = str(current_user.public_id)
        form.clinician_npi.data = current_user.npi or ""
    return form


@bp.get("/partner/")
@requires(Permission.PARTNER_HOME)
def home():
    """The partner's home: their organization's referrals, newest change first, paged and searchable."""
    status = request.args.get("status", "open")
    clinician = request.args.get("clinician", "")
    search = request.args.get("reference", "").strip()
    reference = queries.normalise_reference(search) if search else None
    if search and reference is None:
        page = Page(items=[], per_page=per_page_arg())
    else:  # a reference names one referral: look for it whatever its status
        page = queries.partner_referrals(
            current_user,
            status="" if reference else status,
            clinician=clinician,
            reference=reference,
            cursor=cursor_arg(),
            per_page=per_page_arg(),
        )
    if page.items:
        record_access(AuditAction.PHI_READ, actor=current_user, view="partner_referrals", rows=len(page.items))
    return render_template(
        "referrals/home.html",
        organization=current_user.organization,
        page=page,
        status=status,
        clinician=clinician,
        search=search,
        statuses=list(Status),
        clinicians=queries.organization_clinicians(current_user),
        lookup_form=LookupForm(),
    )


@bp.route("/partner/referrals/new", methods=["GET", "POST"])
@requires(Permission.REFERRALS_SUBMIT)
def new():
    form = _referral_form()
    if form.validate_on_submit():
        try:
            referral = services.submit_referral(
                current_user, form.submission(), request.files.getlist(form.attachments.name)
            )
        except UserError as exc:  # an upload refused (its field), or a clinician not of the organization
            form[exc.field or "attachments"].errors.append(exc.message)
        else:
            return redirect(url_for("referrals.submitted", referral_id=referral.public_id))
    return form_page("referrals/new.html", form, suggestions=suggestions())


@bp.get("/partner/referrals/<uuid:referral_id>/submitted")
@requires(Permission.REFERRALS_FOLLOW)
def submitted(referral_id: uuid.UUID):
    referral = queries.get_referral_or_404(current_user, referral_id)
    return render_template("referrals/submitted.html", referral=referral)


@bp.get("/partner/referrals/<uuid:referral_id>")
@requires(Permission.REFERRALS_FOLLOW)
def detail(referral_id: uuid.UUID):
    referral = queries.get_referral_or_404(current_user, referral_id)
    audit_read(current_user, referral, "partner")
    return _detail_page(referral)


def _detail_page(referral, note_form=None, cancel_form=None, status=200):
    return render_template(
        "referrals/detail.html",
        referral=referral,
        note_form=note_form or NoteForm(),
        cancel_form=cancel_form or CancelForm(),
        can_cancel=referral.status in PARTNER_CANCELLABLE,
    ), status


@bp.post("/partner/referrals/<uuid:referral_id>/notes")
@requires(Permission.REFERRALS_FOLLOW)
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
            return redirect(url_for("referrals.detail", referral_id=referral.public_id))
    audit_read(current_user, referral, "partner")
    return _detail_page(referral, note_form=form, status=422)


@bp.post("/partner/referrals/<uuid:referral_id>/cancel")
@requires(Permission.REFERRALS_FOLLOW)
def cancel(referral_id: uuid.UUID):
    referral = queries.get_referral_or_404(current_user, referral_id)
    form = CancelForm()
    if form.validate_on_submit():
        try:
            services.cancel_by_partner(current_user, referral, form.reason.data)
        except services.ReferralError as exc:
            flash(str(exc), "error")  # shown even when the page offers no cancel form
        else:
            flash(f"Referral {referral.reference} is cancelled.", "success")
            return redirect(url_for("referrals.detail", referral_id=referral.public_id))
    audit_read(current_user, referral, "partner")
    return _detail_page(referral, cancel_form=form, status=422)


@bp.get("/partner/referrals/<uuid:referral_id>/attachments/<uuid:attachment_id>")
@requires(Permission.REFERRALS_FOLLOW)
def attachment(referral_id: uuid.UUID, attachment_id: uuid.UUID):
    return send_attachment(current_user, queries.get_attachment_or_404(current_user, referral_id, attachment_id))


@bp.post("/partner/referrals/lookup")
@requires(Permission.REFERRALS_FOLLOW)
def lookup():
    return lookup_page("referrals.detail", "referrals.lookup")
