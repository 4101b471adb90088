"""Partner admins manage their colleagues: invite, deactivate, reactivate (their own organization only)."""

from flask import Blueprint, flash, redirect, url_for
from flask_login import current_user

from portal.accounts import services as accounts
from portal.accounts.queries import visible_users
from portal.accounts.views import add_account_routes
from portal.core.errors import UserError
from portal.core.forms import form_page
from portal.core.permissions import Permission, Role, requires
from portal.extensions import db
from portal.partners.forms import PartnerInviteForm

bp = Blueprint("partners", __name__, url_prefix="/partner")


@bp.route("/users", methods=["GET", "POST"])
@requires(Permission.PARTNER_USERS_MANAGE)
def users():
    form = PartnerInviteForm()
    if form.validate_on_submit():
        try:
            # The organization is always the partner admin's own: never taken from the form.
            accounts.invite_user(
                current_user,
                email=form.email.data,
                full_name=form.full_name.data,
                role=Role(form.role.data),
                organization=current_user.organization,
                npi=form.npi.data,
            )
        except UserError as exc:
            form.email.errors.append(exc.message)
        else:
            flash(f"Invitation sent to {accounts.normalise_email(form.email.data)}.", "success")  # taken or not
            return redirect(url_for("partners.users"))
    colleagues = db.session.scalars(visible_users(current_user)).all()
    return form_page("partners/users.html", form, users=colleagues)


add_account_routes(bp, Permission.PARTNER_USERS_MANAGE, back="partners.users")
