"""The second sign-in step, setting up and changing the second factor (authenticator app,
passkeys), and admin controls.

The passkey ceremonies are JSON POSTs made by static/js/passkeys.js (CSRF token in the
X-CSRFToken header): options first, then the browser's answer. Their refusals answer JSON
``{"error": message}`` with a 4xx status, never a page, so the script can show them.
"""

import uuid

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select

from portal.accounts.queries import get_visible_user_or_404
from portal.accounts.sessions import start_session
from portal.core.forms import form_page
from portal.core.permissions import Permission, public, requires
from portal.extensions import db, limiter
from portal.mfa import flow, policy, queries, services, totp
from portal.mfa.flow import Stage
from portal.mfa.forms import (
    PASSKEY_POLICY_MARKER,
    ConfirmedEnrolForm,
    EnrolForm,
    OrganizationPolicyForm,
    PasskeyRenameForm,
    PasswordConfirmForm,
    PracticePolicyForm,
    VerifyForm,
)
from portal.mfa.models import TrustedDevice, WebauthnCredential
from portal.mfa.passkeys import Purpose
from portal.mfa.qr import svg_data_uri
from portal.partners.models import Organization

bp = Blueprint("mfa", __name__)
bp.before_app_request(flow.enforce_enrolment)

WRONG_CODE = "That code is not right, or it was already used. Wait for the next code and try again."
SIGN_IN_AGAIN = "Please sign in again."
PASSWORD_NEEDED = "Enter your current password to do that."
LOCKED = "Too many wrong codes: the account is locked for a while. Try again later."
LOCKED_PASSKEY = "Too many failed attempts: the account is locked for a while. Try again later."
UNREADABLE_REQUEST = "The request could not be read. Please reload the page and try again."


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
    context = _verify_context(user, form, days)
    if form.validate_on_submit():
        try:
            kind = services.verify_second_factor(user, form.code.data)
        except services.MfaError as exc:
            form.code.errors.append(exc.message)
            return render_template("mfa/verify.html", **context), exc.status
        if kind is None and user.is_locked:
            flow.clear_pending()
            flash(LOCKED, "error")
            return redirect(url_for("auth.login"))
        if kind is None:
            form.code.errors.append(WRONG_CODE)
            return render_template("mfa/verify.html", **context), 401
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
    return form_page("mfa/verify.html", form, **{k: v for k, v in context.items() if k != "form"})


def _verify_context(user, form, days) -> dict:
    choices = services.second_step_choices(user)
    if choices["has_passkeys"] and not choices["has_app"]:
        form.code.label.text = "Recovery code"
        form.code.description = "Lost your passkey? Enter one of your recovery codes instead."
    return {"form": form, "days": days, **choices}


@bp.post("/auth/mfa/passkey/options")
@public
@limiter.limit(_login_limit)
def passkey_options():
    """Second step by passkey, 1 of 2: the challenge and the user's passkeys for the browser."""
    user, _note = _pending_ceremony(Stage.VERIFY)
    try:
        return jsonify(publicKey=services.passkey_sign_in_options(user))
    except services.MfaError as exc:
        return _json_error(exc)


@bp.post("/auth/mfa/passkey/verify")
@public
@limiter.limit(_login_limit)
def passkey_verify():
    """Second step by passkey, 2 of 2: the browser's signed answer; the session starts here."""
    user, note = _pending_ceremony(Stage.VERIFY)
    body = _json_body()
    try:
        services.verify_passkey(user, body.get("credential"))
    except services.MfaError as exc:
        if user.is_locked:
            flow.clear_pending()
            flash(LOCKED_PASSKEY, "error")
            return _json_error(exc, message=LOCKED_PASSKEY, redirect_to=url_for("auth.login"))
        return _json_error(exc)
    flow.complete(user, f"{note['method']}+passkey")
    response = jsonify(redirect=note.get("next") or url_for("home.index"))
    trusted = services.trust_device(user) if body.get("remember") is True else None
    if trusted:
        flow.set_device_cookie(response, *trusted)
    return response


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
    return form_page(
        "mfa/setup.html",
        form,
        **_enrolment_context(user, credential),
        signed_in=False,
        passkey_required=policy.passkey_required(user),
    )


@bp.post("/auth/mfa/setup/passkey/options")
@public
@limiter.limit(_login_limit)
def passkey_setup_options():
    """Required set-up with a passkey instead of an app, 1 of 2 (between the password and the session)."""
    user, _note = _pending_ceremony(Stage.ENROL)
    body = _json_body()
    try:
        options = services.passkey_registration_options(
            user, name=_text(body, "name"), password=None, purpose=Purpose.ENROL
        )
    except services.MfaError as exc:
        return _json_error(exc)
    return jsonify(publicKey=options)


@bp.post("/auth/mfa/setup/passkey")
@public
@limiter.limit(_login_limit)
def passkey_setup():
    """Required set-up with a passkey, 2 of 2: store it, start the session, show the recovery codes."""
    user, note = _pending_ceremony(Stage.ENROL)
    body = _json_body()
    try:
        _credential, codes = services.add_passkey(user, body.get("credential"), purpose=Purpose.ENROL)
    except services.MfaError as exc:
        return _json_error(exc)
    flow.complete(user, f"{note['method']}+passkey")
    return jsonify(recovery_codes=codes, redirect=note.get("next") or url_for("home.index"))


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


# --- signed in: passkeys ------------------------------------------------------------------


@bp.post("/auth/mfa/passkeys/options")
@requires(Permission.ACCOUNT_MANAGE)
@limiter.limit(_login_limit)
def passkey_register_options():
    """Add a passkey from the account page, 1 of 2: its name and the current password."""
    body = _json_body()
    try:
        options = services.passkey_registration_options(
            current_user._get_current_object(),
            name=_text(body, "name"),
            password=_text(body, "password"),
            purpose=Purpose.REGISTER,
        )
    except services.MfaError as exc:
        return _json_error(exc)
    return jsonify(publicKey=options)


@bp.post("/auth/mfa/passkeys")
@requires(Permission.ACCOUNT_MANAGE)
@limiter.limit(_login_limit)
def passkey_register():
    """Add a passkey, 2 of 2: other sessions end (this browser gets a fresh one)."""
    user = current_user._get_current_object()
    body = _json_body()
    try:
        _credential, codes = services.add_passkey(user, body.get("credential"), purpose=Purpose.REGISTER)
    except services.MfaError as exc:
        return _json_error(exc)
    start_session(user, auth_method=g.user_session.auth_method)
    if not codes:
        flash("Your passkey was added. Other browsers signed in to your account were signed out.", "success")
    # No #fragment: the script is on that very page, and a fragment alone would not reload it.
    return jsonify(recovery_codes=codes, redirect=url_for("auth.account"))


@bp.get("/auth/mfa/passkeys/<uuid:passkey_id>")
@requires(Permission.ACCOUNT_MANAGE)
def passkey(passkey_id: uuid.UUID):
    credential = _own_passkey_or_404(passkey_id)
    form = PasskeyRenameForm(data={"name": credential.name})
    return _passkey_page(credential, form, PasswordConfirmForm(prefix="remove"))


@bp.post("/auth/mfa/passkeys/<uuid:passkey_id>/rename")
@requires(Permission.ACCOUNT_MANAGE)
def rename_passkey(passkey_id: uuid.UUID):
    credential = _own_passkey_or_404(passkey_id)
    form = PasskeyRenameForm()
    if form.validate_on_submit():
        try:
            services.rename_passkey(current_user, credential, form.name.data)
        except services.MfaError as exc:
            form.name.errors.append(exc.message)
        else:
            flash("The passkey was renamed.", "success")
            return redirect(url_for("auth.account", _anchor="passkeys-h"))
    return _passkey_page(credential, form, PasswordConfirmForm(prefix="remove"), status=422)


@bp.post("/auth/mfa/passkeys/<uuid:passkey_id>/remove")
@requires(Permission.ACCOUNT_MANAGE)
@limiter.limit(_login_limit)
def remove_passkey(passkey_id: uuid.UUID):
    user = current_user._get_current_object()
    credential = _own_passkey_or_404(passkey_id)
    form = PasswordConfirmForm(prefix="remove")
    if form.validate_on_submit():
        try:
            turned_off = services.remove_passkey(user, credential, form.password.data)
        except services.MfaError as exc:
            form.password.errors.append(exc.message)
        else:
            start_session(user, auth_method=_first_factor() if turned_off else g.user_session.auth_method)
            flash(
                "Two-step verification is off. Other sessions were signed out."
                if turned_off
                else "The passkey was removed. Other sessions were signed out.",
                "success",
            )
            return redirect(url_for("auth.account", _anchor="passkeys-h"))
    return _passkey_page(credential, PasskeyRenameForm(data={"name": credential.name}), form, status=422)


def _own_passkey_or_404(passkey_id: uuid.UUID) -> WebauthnCredential:
    return queries.own_passkey_or_404(current_user, passkey_id)


def _passkey_page(credential, rename_form, remove_form, status: int = 200):
    return render_template("mfa/passkey.html", passkey=credential, form=rename_form, remove_form=remove_form), status


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
        # The passkey box changes the policy only where the page showed it (an unticked box sends nothing).
        shown = PASSKEY_POLICY_MARKER in request.form
        services.set_organization_policy(
            current_user,
            org,
            mfa_required=form.is_mfa_required.data,
            device_trust_allowed=form.is_device_trust_allowed.data,
            passkey_required=form.is_passkey_required.data if shown else None,
        )
        flash(f"Sign-in policy of {org.name} saved.", "success")
    return redirect(url_for("admin.organization", org_id=org.public_id))


@bp.route("/admin/sign-in-policy", methods=["GET", "POST"])
@requires(Permission.ORGANIZATIONS_MANAGE)
def practice_policy():
    """The practice's own sign-in policy: passkeys for staff and admins; which organizations require them."""
    form = PracticePolicyForm()
    if form.validate_on_submit():
        try:
            services.set_practice_passkey_policy(current_user, required=form.passkey_required.data)
        except services.MfaError as exc:
            form.passkey_required.errors.append(exc.message)
        else:
            flash("The practice's sign-in policy was saved.", "success")
            return redirect(url_for("mfa.practice_policy"))
    elif not form.is_submitted():
        form.passkey_required.data = policy.scope_requires_passkey(None)
    return form_page("mfa/practice_policy.html", form, **queries.passkey_policy_overview())


METHOD_LABELS = {
    "password": "Password",
    "oidc": "Organization sign-in",
    "totp": "authenticator code",
    "recovery_code": "recovery code",
    "trusted_device": "remembered browser",
    "idp_mfa": "organization's two-step",
    "passkey": "passkey",
}


@bp.app_template_filter("sign_in_method")
def sign_in_method(method: str | None) -> str:
    """'password+totp' -> 'Password + authenticator code'."""
    return " + ".join(METHOD_LABELS.get(part, part) for part in (method or "password").split("+"))


def _first_factor() -> str:
    return (g.user_session.auth_method or "password").split("+", 1)[0]


# --- JSON answers of the passkey ceremonies -------------------------------------------------


def _json_body() -> dict:
    """The request's JSON object; anything else ends the request with a 400 that says so."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(make_response(jsonify(error=UNREADABLE_REQUEST), 400))
    return body


def _pending_ceremony(stage: Stage) -> tuple:
    """(user, note) of the half-finished sign-in at ``stage``; without one the request ends with a 401 that
    sends the browser back to the password."""
    found = flow.pending(stage)
    if found is None:
        flash(SIGN_IN_AGAIN, "info")
        abort(make_response(jsonify(error=SIGN_IN_AGAIN, redirect=url_for("auth.login")), 401))
    return found


def _text(body: dict, key: str) -> str:
    value = body.get(key)
    return value if isinstance(value, str) else ""


def _json_error(exc: services.MfaError, *, message: str | None = None, redirect_to: str | None = None):
    payload = {"error": message or exc.message}
    if exc.field:
        payload["field"] = exc.field
    if redirect_to:
        payload["redirect"] = redirect_to
    return jsonify(payload), exc.status


def _enrolment_context(user, credential) -> dict:
    uri = totp.provisioning_uri(credential.secret, user.email, current_app.config["PORTAL_NAME"])
    key = totp.to_base32(credential.secret)
    return {
        "qr": svg_data_uri(uri),
        "manual_key": " ".join(key[i : i + 4] for i in range(0, len(key), 4)),
        "account_label": user.email,
    }
