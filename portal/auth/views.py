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

bp = Blueprint("auth", __name__, url_prefix="/auth")

LOGIN_FAILED = "Incorrect e-mail or password, or the account is locked. Please try again or reset your password."
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
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is not None:
            return flow.after_first_factor(user, "password", next_path=safe_next_path(session.get("next")))
        flash(LOGIN_FAILED, "error")
        return render_template("auth/login.html", form=form), 401
    return form_page("auth/login.html", form)


@bp.post("/logout")
@requires(Permission.ACCOUNT_MANAGE)
def logout():
    record(AuditAction.LOGOUT, actor=current_user)
    end_current_session("logout")
    flash("You have signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/forgot", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def forgot_password():
    form = ForgotPasswordForm()
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
    if services.check_link(TokenPurpose(purpose), signed) is None:
        return render_template("auth/link_invalid.html"), 400
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


@bp.route("/account", methods=["GET", "POST"])
@requires(Permission.ACCOUNT_MANAGE)
def account():
    form = ChangePasswordForm()
    form.password_context = (
        current_user.email.split("@")[0],
        current_user.full_name,
        current_app.config["PORTAL_NAME"],
    )
    if form.validate_on_submit():
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
