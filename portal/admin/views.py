"""Practice administration: organizations and user accounts."""
import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from portal.admin import audit as audit_viewer
from portal.admin.forms import AdminInviteForm, OrganizationForm
from portal.audit.models import AuditEvent
from portal.audit.services import AuditAction, record, record_access
from portal.accounts import services as accounts
from portal.accounts.models import User
from portal.accounts.views import set_enabled_and_return
from portal.accounts.queries import get_visible_user_or_404, visible_users
from portal.core.csv import csv_download
from portal.core.forms import form_page
from portal.core.paging import SortKey, cursor_arg, paginate, per_page_arg
from portal.core.permissions import Permission, Role, requires
from portal.extensions import db
from portal.mfa.forms import OrganizationPolicyForm
from portal.mfa.services import users_with_second_factor
from portal.partners.models import Organization, OrganizationKind
from portal.sso.services import provider_of

bp = Blueprint("admin", __name__, url_prefix="/admin")
BY_ORGANIZATION_NAME = (SortKey(Organization.name, lambda row: row[0].name), SortKey(Organization.id, lambda row: row[0].id))
BY_USER_NAME = (SortKey(User.full_name, lambda u: u.full_name), SortKey(User.id, lambda u: u.id))


@bp.get("/")
@requires(Permission.ADMIN_HOME)
def home():
    counts = dict(db.session.execute(select(User.role, func.count()).group_by(User.role)).all())
    organizations = db.session.scalar(select(func.count()).select_from(Organization))
    pending = db.session.scalar(select(func.count()).select_from(User).where(User.password_hash.is_(None)))
    return render_template("admin/home.html", counts=counts, organizations=organizations, pending=pending)


@bp.route("/organizations", methods=["GET", "POST"])
@requires(Permission.ORGANIZATIONS_MANAGE)
def organizations():
    form = OrganizationForm()
    if form.validate_on_submit():
        if db.session.scalar(select(Organization).where(func.lower(Organization.name) == form.name.data.lower())):
            form.name.errors.append("An organization with this name already exists.")
        else:
            org = Organization(name=form.name.data, kind=OrganizationKind(form.kind.data),
                               city=form.city.data or None, us_state=form.us_state.data or None,
                               npi=form.npi.data or None)
            db.session.add(org)
            db.session.flush()
            record(AuditAction.ORGANIZATION_CREATED, actor=current_user, obj=org)
            flash(f"Organization “{org.name}” created. Invite its first partner admin below.", "success")
            return redirect(url_for("admin.organization", org_id=org.public_id))
    page = paginate(select(Organization, func.count(User.id)).outerjoin(User, User.organization_id == Organization.id)
                    .group_by(Organization.id), BY_ORGANIZATION_NAME, listing="admin-organizations",
                    cursor=cursor_arg(), per_page=per_page_arg(), scalars=False)
    return form_page("admin/organizations.html", form, page=page)


@bp.get("/organizations/<uuid:org_id>")
@requires(Permission.ORGANIZATIONS_MANAGE)
def organization(org_id: uuid.UUID):
    org = db.first_or_404(select(Organization).where(Organization.public_id == org_id))
    members = db.session.scalars(select(User).where(User.organization_id == org.id).order_by(User.full_name)).all()
    form = _invite_form(organization=str(org.public_id))
    return render_template("admin/organization.html", org=org, members=members, form=form,
                           policy_form=OrganizationPolicyForm(obj=org), sso=provider_of(org),
                           mfa_ids=users_with_second_factor(members))


@bp.route("/users", methods=["GET", "POST"])
@requires(Permission.USERS_MANAGE)
def users():
    form = _invite_form()
    if form.validate_on_submit():
        org = None
        if form.organization.data:
            org = db.session.scalar(select(Organization).where(
                Organization.public_id == _uuid_or_none(form.organization.data)))
            if org is None:
                form.organization.errors.append("Choose an organization from the list.")
        if not form.errors:
            try:
                user = accounts.invite_user(current_user, email=form.email.data, full_name=form.full_name.data,
                                            role=Role(form.role.data), organization=org, npi=form.npi.data)
            except accounts.AccountError as exc:
                form.email.errors.append(str(exc))
            else:
                flash(f"Invitation sent to {user.email}.", "success")
                return redirect(url_for("admin.users"))
    page = paginate(visible_users(current_user), BY_USER_NAME, listing="admin-users", cursor=cursor_arg(),
                    per_page=per_page_arg())
    return form_page("admin/users.html", form, page=page, mfa_ids=users_with_second_factor(page.items))


@bp.post("/users/<uuid:user_id>/deactivate")
@requires(Permission.USERS_MANAGE)
def deactivate_user(user_id: uuid.UUID):
    return set_enabled_and_return(user_id, False, "admin.users")


@bp.post("/users/<uuid:user_id>/reactivate")
@requires(Permission.USERS_MANAGE)
def reactivate_user(user_id: uuid.UUID):
    return set_enabled_and_return(user_id, True, "admin.users")


def _invite_form(**defaults) -> AdminInviteForm:
    orgs = db.session.scalars(select(Organization).order_by(Organization.name)).all()
    return AdminInviteForm(orgs, **defaults)


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# --- the audit trail -----------------------------------------------------------------------

NEWEST_FIRST = (SortKey(AuditEvent.id, lambda row: row[0].id, descending=True),)


@bp.get("/audit")
@requires(Permission.AUDIT_REVIEW)
def audit():
    query, filters = audit_viewer.filtered_events(request.args)
    if request.args.get("format") == "csv":
        record_access(AuditAction.AUDIT_EXPORTED, actor=current_user,
                      **{f"filter_{k}": v for k, v in filters.items() if v})
        return csv_download("audit", ["id", "seq", "time", "actor", "action", "object_type", "object_id",
                                      "patient_id", "request_id", "ip"], audit_viewer.csv_rows(query))
    page = paginate(query, NEWEST_FIRST, listing="audit", cursor=cursor_arg(), per_page=per_page_arg(),
                    scalars=False)
    return render_template("admin/audit.html", page=page, filters=filters, actions=sorted(a.value for a in AuditAction))
