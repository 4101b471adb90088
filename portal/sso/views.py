"""'Sign in with your organization', the provider's callback, and single logout."""

from flask import current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user

from portal.core.forms import form_page
from portal.core.permissions import Role, public
from portal.core.unit_of_work import begin_writing, reads_first
from portal.core.urls import safe_next_path as _safe_next
from portal.extensions import csrf, limiter
from portal.mfa import flow
from portal.sso import oidc, services, settings, settings_views
from portal.sso.blueprint import bp
from portal.sso.forms import SsoStartForm
from portal.sso.queries import provider_for_email

__all__ = ["bp", "settings_views"]  # settings_views adds the settings pages to bp

NO_SSO = "Single sign-on is not set up for that e-mail address. Sign in with your portal password instead."
UNREACHABLE = "Your organization's sign-in service could not be reached. Try again later, or use your password."


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/auth/sso", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
@reads_first  # fetches the provider's discovery document; writes nothing but its audit record
def start():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = SsoStartForm()
    if request.method == "GET" and isinstance(session.get(services.HINT_KEY), str):
        form.email.data = session.pop(services.HINT_KEY)
    if form.validate_on_submit():
        provider = provider_for_email(form.email.data)
        if provider is None:
            form.email.errors.append(NO_SSO)
        else:
            try:
                url = services.begin(provider, login_hint=form.email.data, next_path=_safe_next(session.get("next")))
            except oidc.OidcError:
                flash(UNREACHABLE, "error")
                return render_template("sso/start.html", form=form), 503
            # A page, not a redirect: the CSP's form-action 'self' also covers redirects that
            # follow a form post, and the provider is another origin.
            return render_template("sso/redirect.html", url=url, label=provider.label)
    return form_page("sso/start.html", form)


@bp.get("/auth/sso/callback")
@public
@limiter.limit(_login_limit)
def callback():
    try:
        pending = services.take_pending(request.args)
        verified = services.verify(pending, request.args)
    except services.SsoFailure as exc:
        return render_template("sso/refused.html", message=exc.message), exc.status
    begin_writing()  # the provider vouched for the person: now bind, update or create, and sign in
    if pending.purpose == "test":
        try:
            outcome = settings.complete_test(current_user._get_current_object(), pending, verified)
        except services.SsoFailure as exc:
            return render_template("sso/refused.html", message=exc.message), exc.status
        return render_template(
            "sso/test_result.html", outcome=outcome, by_practice=not Role(current_user.role).is_partner
        )
    try:
        result = services.sign_in(pending, verified)
    except services.SsoFailure as exc:
        return render_template("sso/refused.html", message=exc.message), exc.status
    return flow.after_first_factor(
        result.user, "oidc", next_path=_safe_next(result.next_path), idp_mfa=result.idp_mfa, carry=result.carry
    )


@bp.get("/auth/sso/signed-out")
@public
def signed_out():
    """Where the provider sends the browser back after signing the person out there too."""
    return render_template("sso/signed_out.html")


@bp.post("/auth/sso/backchannel-logout")
@public
@csrf.exempt  # the provider posts here, server to server (Back-Channel Logout 1.0), with a signed token
@limiter.limit(_login_limit)
@reads_first  # may fetch the provider's keys before it ends sessions
def backchannel_logout():
    token = request.form.get("logout_token", "")
    if not token or len(token) > 16_384:
        return _no_store(jsonify(error="invalid_request", error_description="logout_token is missing.")), 400
    try:
        claims, provider = services.check_logout_token(token)
    except services.SsoFailure as exc:
        return _no_store(jsonify(error="invalid_request", error_description=exc.message)), exc.status
    begin_writing()
    services.end_sessions_named(provider, claims)
    return _no_store(current_app.response_class(status=200))


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response
