"""The root address and each role's home page: what needs me now?"""
from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select

from portal.accounts.models import User
from portal.consent.policy import expiring_count
from portal.core.permissions import Permission, Role, public, requires
from portal.core.time import practice_today
from portal.extensions import db
from portal.partners.models import Organization
from portal.progress.services import approval_count
from portal.referrals.lifecycle import Status
from portal.referrals.queries import status_counts, urgent_waiting

bp = Blueprint("home", __name__)

HOME_ENDPOINTS = {
    Role.PARTNER: "referrals.home",
    Role.PARTNER_ADMIN: "referrals.home",
    Role.STAFF: "home.staff",
    Role.ADMIN: "admin.home",
}


@bp.get("/")
@public
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for(HOME_ENDPOINTS[Role(current_user.role)]))


@bp.get("/staff/")
@requires(Permission.STAFF_HOME)
def staff():
    partner_count = db.session.scalar(select(func.count()).select_from(Organization))
    partner_users = db.session.scalar(
        select(func.count()).select_from(User).where(User.organization_id.is_not(None)))
    return render_template("home/staff.html", partner_count=partner_count, partner_users=partner_users,
                           counts=status_counts(current_user), urgent=urgent_waiting(current_user),
                           approvals=approval_count(current_user), expiring=expiring_count(practice_today(), 30),
                           Status=Status)


@bp.get("/healthz")
@public
def health():
    """Liveness and database reachability for the load balancer."""
    db.session.execute(select(1))
    return {"status": "ok"}
