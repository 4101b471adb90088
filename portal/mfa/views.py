"""The second sign-in step, setting up and changing the second factor, and admin controls."""

import uuid

from flask import Blueprint, current_app, flash, g, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.accounts.queries import get_visible_user_or_404
from portal.accounts.sessions import start_session
from portal.core.forms import form_page
from portal.core.permissions import Permission, public, requires
from portal.extensions import db, limiter
from portal.mfa import flow, policy, services, totp
from portal.mfa.flow import Stage
from portal.mfa.forms import (
    ConfirmedEnrolForm,
    EnrolForm,
    OrganizationPolicyForm,
    PasswordConfirmForm,
    VerifyForm,
)
from portal.mfa.models import TrustedDevice
from portal.mfa.qr import svg_data_uri
from portal.partners.models import Organization

bp = Blueprint("mfa", __name__)
bp.before_app_request(flow.enforce_enrolment)

WRONG_CODE = "That code is not right, or it was already used. Wait for the next code and try again."
SIGN_IN_AGAIN = "Please sign in again."
PASSWORD_NEEDED = "Enter your current password to do that."


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.after_request
def never_cache(response):
    # These pages carry secrets (the new key, recovery codes) to users not yet signed in,
    # whom the portal-wide no-store rule does not cover.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


# --- during sign-in (nobody is signed in yet) -----------------------------------------------


@bp.route("/auth/mfa/verify", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def verify():
    found = flow.pending(Stage.VERIFY)
    if found is None:
        flash(SIGN_IN_AGAIN, "info")
        return redirect(url_for("auth.login"))
    user, note = found
    form = VerifyForm()
    days = policy.remember_days(user)
    if form.validate_on_submit():
        kind = services.verify_second_factor(user, form.code.data)
        if kind is None and user.is_locked:
            flow.clear_pending()
            flash("Too many wrong codes: the account is locked for a while. Try again later.", "error")
            return redirect(url_for("auth.login"))
        if kind is None:
            form.code.errors.append(WRONG_CODE)
            return render_template("mfa/verify.html", form=form, days=days), 401
        flow.complete(user, f"{note['method']}+{kind}")
        target = note.get("next") or url_for("home.index")
        if kind == "recovery_code":
            left = services.remaining_recovery_codes(user)
            flash(
                f"You signed in with a recovery code; {left} left. If you lost your phone, "
                "set up your authenticator app again below.",
                "info",
            )
            target = url_for("auth.account")
        response = redirect(target)
        trusted = services.trust_device(user) if form.remember.data else None
        if trusted:
            flow.set_device_cookie(response, *trusted)
        return response
    return form_page("mfa/verify.html", form, days=days)


@bp.route("/auth/mfa/setup", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def setup():
    """First set-up, required by policy, between the password and the first session."""
    found = flow.pending(Stage.ENROL)
    if found is None:
        flash(SIGN_IN_AGAIN, "info")
        return redirect(url_for("auth.login"))
    user, note = found
    credential = services.pending_credential(user)
    form = EnrolForm()
    if form.validate_on_submit():
        try:
            codes = services.confirm_enrolment(user, credential, form.code.data)
        except services.MfaError as exc:
            form.code.errors.append(str(exc))
        else:
            flow.complete(user, f"{note['method']}+totp")
            return render_template(
                "mfa/recovery_codes.html", codes=codes, next_url=note.get("next") or url_for("home.index")
            )
    return form_page("mfa/setup.html", form, **_enrolment_context(user, credential), signed_in=False)


# --- signed in: the user's own second factor ------------------------------------------------


@bp.route("/auth/mfa/enrol", methods=["GET", "POST"])
@requires(Permission.ACCOUNT_MANAGE)
@limiter.limit(_login_limit, methods=["POST"])
def enrol():
    """Set up, or replace, the authenticator app (a lost or new phone)."""
    user = current_user._get_current_object()
    credential = services.pending_credential(user)
    form = ConfirmedEnrolForm()
    if form.validate_on_submit():
        try:
            codes = services.confirm_enrolment(user, credential, form.code.data, password=form.password.data)
        except services.MfaError as exc:
            form.code.errors.append(str(exc))
        else:
            start_session(user, auth_method=f"{_first_factor()}+totp")
            return render_template("mfa/recovery_codes.html", codes=codes, next_url=url_for("auth.account"))
    return form_page(
        "mfa/setup.html",
        form,
        **_enrolment_context(user, credential),
        signed_in=True,
        replacing=services.has_second_factor(user),
    )


@bp.post("/auth/mfa/recovery-codes")
@requires(Permission.ACCOUNT_MANAGE)
@limiter.limit(_login_limit)
def recovery_codes():
    user = current_user._get_current_object()
    form = PasswordConfirmForm(prefix="codes")
    if not form.validate_on_submit():
        flash(PASSWORD_NEEDED, "error")
        return redirect(url_for("auth.account"))
    try:
        codes = services.regenerate_recovery_codes(user, form.password.data)
    except services.MfaError as exc:
        flash(str(exc), "error")
        return redirect(url_for("auth.account"))
    start_session(user, auth_method=g.user_session.auth_method)
    return render_template("mfa/recovery_codes.html", codes=codes, next_url=url_for("auth.account"))


@bp.post("/auth/mfa/disable")
@requires(Permission.ACCOUNT_MANAGE)
@limiter.limit(_login_limit)
def disable():
    user = current_user._get_current_object()
    form = PasswordConfirmForm(prefix="off")
    if not form.validate_on_submit():
        flash(PASSWORD_NEEDED, "error")
        return redirect(url_for("auth.account"))
    try:
        services.disable(user, form.password.data)
    except services.MfaError as exc:
        flash(str(exc), "error")
    else:
        start_session(user, auth_method=_first_factor())
        flash("Two-step verification is off. Other sessions were signed out.", "success")
    return redirect(url_for("auth.account"))


@bp.post("/auth/mfa/devices/<uuid:device_id>/revoke")
@requires(Permission.ACCOUNT_MANAGE)
def revoke_device(device_id: uuid.UUID):
    device = db.first_or_404(
        select(TrustedDevice).where(
            TrustedDevice.public_id == device_id,
            TrustedDevice.user_id == current_user.id,
            TrustedDevice.revoked_at.is_(None),
        )
    )
    services.revoke_device(current_user, device)
    flash("That browser will be asked for a code at its next sign-in.", "success")
    return redirect(url_for("auth.account"))


# --- practice admins ----------------------------------------------------------------------


@bp.post("/admin/users/<uuid:user_id>/reset-mfa")
@requires(Permission.USERS_MANAGE)
def admin_reset(user_id: uuid.UUID):
    user = get_visible_user_or_404(current_user, user_id)
    try:
        services.admin_reset(current_user, user)
        flash(f"Two-step verification of {user.full_name} was reset; they set it up again at next sign-in.", "success")
    except services.MfaError as exc:
        flash(str(exc), "error")
    return redirect(url_for("admin.users"))


@bp.post("/admin/organizations/<uuid:org_id>/sign-in-policy")
@requires(Permission.ORGANIZATIONS_MANAGE)
def organization_policy(org_id: uuid.UUID):
    org = db.first_or_404(select(Organization).where(Organization.public_id == org_id))
    form = OrganizationPolicyForm()
    if form.validate_on_submit():
        services.set_organization_policy(
            current_user,
            org,
            mfa_required=form.is_mfa_required.data,
            device_trust_allowed=form.is_device_trust_allowed.data,
        )
        flash(f"Sign-in policy of {org.name} saved.", "success")
    return redirect(url_for("admin.organization", org_id=org.public_id))


METHOD_LABELS = {
    "password": "Password",
    "oidc": "Organization sign-in",
    "totp": "authenticator code",
    "recovery_code": "recovery code",
    "trusted_device": "remembered browser",
    "idp_mfa": "organization's two-step",
}


@bp.app_template_filter("sign_in_method")
def sign_in_method(method: str | None) -> str:
    """'password+totp' -> 'Password + authenticator code'."""
    return " + ".join(METHOD_LABELS.get(part, part) for part in (method or "password").split("+"))


def _first_factor() -> str:
    return (g.user_session.auth_method or "password").split("+", 1)[0]


def _enrolment_context(user, credential) -> dict:
    uri = totp.provisioning_uri(credential.secret, user.email, current_app.config["PORTAL_NAME"])
    key = totp.to_base32(credential.secret)
    return {
        "qr": svg_data_uri(uri),
        "manual_key": " ".join(key[i : i + 4] for i in range(0, len(key), 4)),
        "account_label": user.email,
    }
