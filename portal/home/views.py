"""The root address and each role's home page: what needs me now?"""

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user

from portal.core.permissions import Permission, Role, public, requires
from portal.home import partner_views  # noqa: F401  (the partner's home and referral page: referrals blueprint routes)
from portal.home.queries import staff_today
from portal.referrals.lifecycle import Status

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
    return render_template("home/staff.html", **staff_today(current_user), Status=Status)


@bp.get("/healthz")
@public
def health():
    """Liveness: this process answers. Nothing else (no database, no disk): a database outage must not
    make a supervisor restart healthy workers. Whether it can serve users is /readyz (portal/ops)."""
    return {"status": "ok"}, 200, {"Cache-Control": "no-store"}
