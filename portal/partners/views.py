"""The referring partner's side: home page and (for partner admins) their colleagues."""
import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.admin.views import set_enabled_and_return
from portal.audit.services import AuditAction, record_access
from portal.accounts import services as accounts
from portal.accounts.queries import visible_users
from portal.core.forms import form_page
from portal.core.paging import Page, cursor_arg, per_page_arg
from portal.core.permissions import Permission, Role, requires
from portal.extensions import db
from portal.partners.forms import PartnerInviteForm
from portal.referrals.forms import LookupForm
from portal.referrals.lifecycle import Status
from portal.referrals.queries import normalise_reference, organization_clinicians, partner_referrals

bp = Blueprint("partners", __name__, url_prefix="/partner")


@bp.get("/")
@requires(Permission.PARTNER_HOME)
def home():
    status = request.args.get("status", "open")
    clinician = request.args.get("clinician", "")
    search = request.args.get("reference", "").strip()
    reference = normalise_reference(search) if search else None
    if search and reference is None:
        page = Page(items=[], per_page=per_page_arg())
    else:  # a reference names one referral: look for it whatever its status
        page = partner_referrals(current_user, status="" if reference else status, clinician=clinician,
                                 reference=reference, cursor=cursor_arg(), per_page=per_page_arg())
    if page.items:
        record_access(AuditAction.PHI_READ, actor=current_user, view="partner_referrals", rows=len(page.items))
    return render_template("partners/home.html", organization=current_user.organization, page=page,
                           status=status, clinician=clinician, search=search, statuses=list(Status),
                           clinicians=organization_clinicians(current_user), lookup_form=LookupForm())


@bp.route("/users", methods=["GET", "POST"])
@requires(Permission.PARTNER_USERS_MANAGE)
def users():
    form = PartnerInviteForm()
    if form.validate_on_submit():
        try:
            # The organization is always the partner admin's own: never taken from the form.
            user = accounts.invite_user(current_user, email=form.email.data, full_name=form.full_name.data,
                                        role=Role(form.role.data), organization=current_user.organization,
                                        npi=form.npi.data)
        except accounts.AccountError as exc:
            form.email.errors.append(str(exc))
        else:
            flash(f"Invitation sent to {user.email}.", "success")
            return redirect(url_for("partners.users"))
    colleagues = db.session.scalars(visible_users(current_user)).all()
    return form_page("partners/users.html", form, users=colleagues)


@bp.post("/users/<uuid:user_id>/deactivate")
@requires(Permission.PARTNER_USERS_MANAGE)
def deactivate_user(user_id: uuid.UUID):
    return set_enabled_and_return(user_id, False, "partners.users")


@bp.post("/users/<uuid:user_id>/reactivate")
@requires(Permission.PARTNER_USERS_MANAGE)
def reactivate_user(user_id: uuid.UUID):
    return set_enabled_and_return(user_id, True, "partners.users")
