"""Sign in and out, one-time links (invitation, reset) and the signed-in user's account."""

import uuid

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user

from portal.accounts import services
from portal.accounts.models import TokenPurpose
from portal.accounts.passwords import verify_password
from portal.accounts.queries import get_own_session_or_404
from portal.accounts.sessions import end_current_session, end_session_by_user, end_sessions_except, start_session
from portal.audit.services import AuditAction, record
from portal.auth.forms import ChangePasswordForm, ForgotPasswordForm, LoginForm, SetPasswordForm
from portal.core.forms import form_page
from portal.core.permissions import Permission, public, requires
from portal.core.urls import safe_next_path
from portal.extensions import limiter
from portal.mfa import flow
from portal.mfa import services as mfa
from portal.mfa.forms import PasswordConfirmForm
from portal.sso import services as sso
from portal.sso.queries import provider_of, sso_only_provider_for

bp = Blueprint("auth", __name__, url_prefix="/auth")

LOGIN_FAILED = "Incorrect e-mail or password, or the account is locked. Please try again or reset your password."
SSO_ONLY = "{org} signs its people in with {label} only: the portal keeps no password for them. Sign in with {label}."
_TOKEN_KEY = "account_link"


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if form.is_submitted() and (refused := _sso_only_by_domain(form.email.data)):
        return refused  # no password is checked for an address that signs in elsewhere
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is not None and user.organization is not None and user.organization.is_sso_only:
            return _sso_only(user.organization, provider_of(user.organization), user.email)
        if user is not None:
            return flow.after_first_factor(user, "password", next_path=safe_next_path(session.get("next")))
        flash(LOGIN_FAILED, "error")
        return render_template("auth/login.html", form=form), 401
    return form_page("auth/login.html", form)


def _sso_only_by_domain(email, template: str = "auth/login.html"):
    """An address whose verified domain belongs to an SSO-only organization: refused with the way to
    its sign-in, whether or not an account exists (the answer depends on the domain alone)."""
    provider = sso_only_provider_for(email) if isinstance(email, str) and "@" in email else None
    return _sso_only(provider.organization, provider, email, template) if provider is not None else None


def _sso_only(org, provider, email: str, template: str = "auth/login.html"):
    label = provider.label if provider is not None else f"{org.name} sign-in"
    session[sso.HINT_KEY] = services.normalise_email(email)
    form = LoginForm() if template == "auth/login.html" else ForgotPasswordForm()
    return render_template(
        template, form=form, sso_only=SSO_ONLY.format(org=org.name, label=label), sso_label=label
    ), 403


@bp.post("/logout")
@requires(Permission.ACCOUNT_MANAGE)
def logout():
    """Signed in through a provider that advertises an end-session endpoint: the browser goes there
    next, so the provider's session ends too (RP-Initiated Logout); else the next SSO sign-in from
    this browser asks the provider to sign the person in again."""
    handle = session.get(sso.LOGIN_KEY)
    at_provider = sso.end_login(current_user, handle) if handle else None
    record(AuditAction.LOGOUT, actor=current_user, **({"provider": True} if at_provider else {}))
    end_current_session("logout")
    if handle:
        session[sso.REAUTH_KEY] = True
    if at_provider is not None:
        return render_template("sso/signing_out.html", url=at_provider.url, label=at_provider.label)
    flash("You have signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/forgot", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.is_submitted() and (refused := _sso_only_by_domain(form.email.data, "auth/forgot.html")):
        return refused
    if form.validate_on_submit():
        services.request_password_reset(form.email.data)
        flash("If an account exists for that address, we have sent it a link to set a new password.", "info")
        return redirect(url_for("auth.login"))
    return form_page("auth/forgot.html", form)


@bp.get("/link/<any(invite, password_reset):purpose>")
@public
@limiter.limit(_login_limit)
def redeem(purpose: str):
    """Move the token from the e-mailed URL into the session, then drop it from the URL."""
    signed = request.args.get("t", "")
    token = services.check_link(TokenPurpose(purpose), signed)
    if token is None:
        return render_template("auth/link_invalid.html"), 400
    if (refused := _no_password_here(token.user)) is not None:
        return refused
    if current_user.is_authenticated:
        end_current_session("link_redeemed")
    session[_TOKEN_KEY] = {"purpose": purpose, "t": signed}
    return redirect(url_for("auth.set_password"))


@bp.route("/set-password", methods=["GET", "POST"])
@public
def set_password():
    pending = session.get(_TOKEN_KEY) or {}
    token = services.check_link(TokenPurpose(pending["purpose"]), pending["t"]) if pending else None
    if token is None:
        session.pop(_TOKEN_KEY, None)
        return render_template("auth/link_invalid.html"), 400
    user = token.user
    if (refused := _no_password_here(user)) is not None:
        session.pop(_TOKEN_KEY, None)
        return refused
    form = SetPasswordForm()
    form.password_context = (user.email.split("@")[0], user.full_name, current_app.config["PORTAL_NAME"])
    if form.validate_on_submit():
        try:
            services.redeem_link(token, form.new_password.data)
        except services.AccountError as exc:
            flash(str(exc), "error")
            return redirect(url_for("auth.login"))
        session.pop(_TOKEN_KEY, None)
        flash("Your password is set. Please sign in.", "success")
        return redirect(url_for("auth.login"))
    return form_page("auth/set_password.html", form, user=user, is_invite=token.purpose is TokenPurpose.INVITE)


def _no_password_here(user):
    """A user of an SSO-only organization never sets a portal password: the page says where to sign in."""
    org = user.organization
    if org is None or not org.is_sso_only:
        return None
    provider = provider_of(org)
    label = provider.label if provider is not None else f"{org.name} sign-in"
    session[sso.HINT_KEY] = user.email
    return render_template("auth/sso_only.html", message=SSO_ONLY.format(org=org.name, label=label), label=label), 403


@bp.route("/account", methods=["GET", "POST"])
@requires(Permission.ACCOUNT_MANAGE)
def account():
    form = ChangePasswordForm()
    form.password_context = (
        current_user.email.split("@")[0],
        current_user.full_name,
        current_app.config["PORTAL_NAME"],
    )
    has_password = services.has_usable_password(current_user)
    if form.is_submitted() and not has_password:
        form.current_password.errors.append(
            "You sign in with your organization's sign-in: there is no portal password."
        )
    elif form.validate_on_submit():
        if not verify_password(current_user.password_hash, form.current_password.data):
            form.current_password.errors.append("That is not your current password.")
        else:
            user = current_user._get_current_object()
            services.set_password(user, form.new_password.data)
            # every other session, including copies of this one, has ended
            start_session(user, auth_method=g.user_session.auth_method)
            flash("Your password has been changed. Other sessions were signed out.", "success")
            return redirect(url_for("auth.account"))
    return form_page(
        "auth/account.html",
        form,
        has_password=has_password,
        sso_only=bool(current_user.organization and current_user.organization.is_sso_only),
        **mfa.account_security(current_user),
        codes_form=PasswordConfirmForm(prefix="codes"),
        off_form=PasswordConfirmForm(prefix="off"),
    )


@bp.post("/sessions/<uuid:session_id>/end")
@requires(Permission.ACCOUNT_MANAGE)
def end_session(session_id: uuid.UUID):
    record_ = get_own_session_or_404(current_user, session_id)
    if record_.id == g.user_session.id:
        flash("That is this browser: use Sign out instead.", "info")
    else:
        end_session_by_user(current_user, record_)
        flash("That session has ended.", "success")
    return redirect(url_for("auth.account"))


@bp.post("/sessions/end-others")
@requires(Permission.ACCOUNT_MANAGE)
def end_other_sessions():
    count = end_sessions_except(current_user, g.user_session)
    flash(f"Signed out everywhere else ({count} {'session' if count == 1 else 'sessions'}).", "success")
    return redirect(url_for("auth.account"))
