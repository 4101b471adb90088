"""The referring partner's side: home page and (for partner admins) their colleagues."""
import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.admin.views import set_enabled_and_return
from portal.audit.services import AuditAction, record_access
from portal.auth import services as accounts
from portal.auth.queries import visible_users
from portal.core.forms import form_page
from portal.core.permissions import Permission, Role, requires
from portal.extensions import db
from portal.partners.forms import PartnerInviteForm
from portal.referrals.forms import LookupForm
from portal.referrals.lifecycle import Status
from portal.referrals.queries import organization_clinicians, partner_referrals

bp = Blueprint("partners", __name__, url_prefix="/partner")


@bp.get("/")
@requires(Permission.PARTNER_HOME)
def home():
    status = request.args.get("status", "open")
    clinician = request.args.get("clinician", "")
    referrals = partner_referrals(current_user, status=status, clinician=clinician)
    if referrals:
        record_access(AuditAction.PHI_READ, actor=current_user, view="partner_referrals", rows=len(referrals))
    return render_template("partners/home.html", organization=current_user.organization, referrals=referrals,
                           status=status, clinician=clinician, statuses=list(Status),
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
