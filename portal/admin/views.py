"""Practice administration: organizations and user accounts."""

import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.accounts import services as accounts
from portal.accounts.queries import members_of, role_counts, users_page
from portal.accounts.views import add_account_routes
from portal.admin import audit as audit_viewer
from portal.admin.forms import AdminInviteForm, OrganizationForm
from portal.audit.models import AuditEvent
from portal.audit.services import AuditAction, record_access
from portal.core.csv import csv_download
from portal.core.errors import UserError
from portal.core.forms import form_page
from portal.core.paging import SortKey, cursor_arg, paginate, per_page_arg
from portal.core.permissions import Permission, Role, requires
from portal.mfa.forms import OrganizationPolicyForm
from portal.mfa.services import users_with_second_factor
from portal.partners.models import OrganizationKind
from portal.partners.queries import (
    all_organizations,
    get_organization_or_404,
    organization_by_public_id,
    organization_count,
    organizations_with_user_counts,
)
from portal.partners.services import create_organization
from portal.sso.services import provider_of

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@requires(Permission.ADMIN_HOME)
def home():
    accounts_by_role = role_counts()
    return render_template(
        "admin/home.html",
        counts=accounts_by_role["by_role"],
        pending=accounts_by_role["pending"],
        organizations=organization_count(),
    )


@bp.route("/organizations", methods=["GET", "POST"])
@requires(Permission.ORGANIZATIONS_MANAGE)
def organizations():
    form = OrganizationForm()
    if form.validate_on_submit():
        try:
            org = create_organization(
                current_user,
                name=form.name.data,
                kind=OrganizationKind(form.kind.data),
                city=form.city.data,
                us_state=form.us_state.data,
                npi=form.npi.data,
            )
        except UserError as exc:
            form[exc.field or "name"].errors.append(exc.message)
        else:
            flash(f"Organization “{org.name}” created. Invite its first partner admin below.", "success")
            return redirect(url_for("admin.organization", org_id=org.public_id))
    return form_page(
        "admin/organizations.html",
        form,
        page=organizations_with_user_counts(cursor=cursor_arg(), per_page=per_page_arg()),
    )


@bp.get("/organizations/<uuid:org_id>")
@requires(Permission.ORGANIZATIONS_MANAGE)
def organization(org_id: uuid.UUID):
    org = get_organization_or_404(org_id)
    members = members_of(org)
    return render_template(
        "admin/organization.html",
        org=org,
        members=members,
        form=_invite_form(organization=str(org.public_id)),
        policy_form=OrganizationPolicyForm(obj=org),
        sso=provider_of(org),
        mfa_ids=users_with_second_factor(members),
    )


@bp.route("/users", methods=["GET", "POST"])
@requires(Permission.USERS_MANAGE)
def users():
    form = _invite_form()
    if form.validate_on_submit():
        org = organization_by_public_id(form.organization.data)
        if form.organization.data and org is None:
            form.organization.errors.append("Choose an organization from the list.")
        if not form.errors:
            try:
                accounts.invite_user(
                    current_user,
                    email=form.email.data,
                    full_name=form.full_name.data,
                    role=Role(form.role.data),
                    organization=org,
                    npi=form.npi.data,
                )
            except UserError as exc:
                form.email.errors.append(exc.message)
            else:
                flash(f"Invitation sent to {accounts.normalise_email(form.email.data)}.", "success")  # taken or not
                return redirect(url_for("admin.users"))
    page = users_page(current_user, cursor=cursor_arg(), per_page=per_page_arg())
    return form_page("admin/users.html", form, page=page, mfa_ids=users_with_second_factor(page.items))


add_account_routes(bp, Permission.USERS_MANAGE, back="admin.users")


def _invite_form(**defaults) -> AdminInviteForm:
    return AdminInviteForm(all_organizations(), **defaults)


# --- the audit trail -----------------------------------------------------------------------

NEWEST_FIRST = (SortKey(AuditEvent.id, lambda row: row[0].id, descending=True),)


@bp.get("/audit")
@requires(Permission.AUDIT_REVIEW)
def audit():
    query, filters = audit_viewer.filtered_events(request.args)
    if request.args.get("format") == "csv":
        record_access(
            AuditAction.AUDIT_EXPORTED, actor=current_user, **{f"filter_{k}": v for k, v in filters.items() if v}
        )
        return csv_download(
            "audit",
            [
                *("id", "seq", "time", "actor", "action", "object_type", "object_id"),
                *("patient_id", "request_id", "ip", "reason"),
            ],
            audit_viewer.csv_rows(query),
        )
    page = paginate(query, NEWEST_FIRST, listing="audit", cursor=cursor_arg(), per_page=per_page_arg(), scalars=False)
    return render_template(
        "admin/audit.html",
        page=page,
        filters=filters,
        actions=sorted(a.value for a in AuditAction),
        reason_of=audit_viewer.reason_of,
    )
