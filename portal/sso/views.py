"""'Sign in with your organization', the provider's callback, and the admin's settings page."""

import uuid

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.core.forms import form_page
from portal.core.permissions import Permission, public, requires
from portal.core.unit_of_work import begin_writing, reads_first
from portal.core.urls import safe_next_path as _safe_next
from portal.extensions import db, limiter
from portal.mfa import flow
from portal.partners.models import Organization
from portal.sso import oidc, services
from portal.sso.forms import OidcProviderForm, SsoStartForm

bp = Blueprint("sso", __name__)

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
    if form.validate_on_submit():
        provider = services.provider_for_email(form.email.data)
        if provider is None:
            form.email.errors.append(NO_SSO)
        else:
            try:
                url = services.begin(provider, form.email.data, _safe_next(session.get("next")))
            except oidc.OidcError:
                flash(UNREACHABLE, "error")
                return render_template("sso/start.html", form=form), 503
            # A page, not a redirect: the CSP's form-action 'self' also covers redirects that
            # follow a form post, and the provider is another origin.
            return render_template("sso/redirect.html", url=url, org=provider.organization)
    return form_page("sso/start.html", form)


@bp.get("/auth/sso/callback")
@public
@limiter.limit(_login_limit)
def callback():
    try:
        result = services.complete(request.args)
    except services.SsoFailure as exc:
        return render_template("sso/refused.html", message=exc.message), exc.status
    begin_writing()  # the provider vouched for the user: now start the session
    return flow.after_first_factor(result.user, "oidc", next_path=_safe_next(result.next_path), idp_mfa=result.idp_mfa)


@bp.route("/admin/organizations/<uuid:org_id>/sso", methods=["GET", "POST"])
@requires(Permission.ORGANIZATIONS_MANAGE)
def configure(org_id: uuid.UUID):
    org = db.first_or_404(select(Organization).where(Organization.public_id == org_id))
    provider = services.provider_of(org)
    current = (
        {
            "issuer": provider.issuer,
            "client_id": provider.client_id,
            "is_enabled": provider.is_enabled,
            "domains": "\n".join(provider.domain_names),
        }
        if provider
        else {}
    )
    form = OidcProviderForm(data=current if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            services.configure(
                current_user,
                org,
                issuer=form.issuer.data,
                client_id=form.client_id.data,
                client_secret=form.client_secret.data or None,
                domains=services.parse_domains(form.domains.data),
                enabled=form.is_enabled.data,
            )
        except services.SsoConfigError as exc:
            form[exc.field].errors.append(exc.message)
        else:
            flash(f"Single sign-on settings of {org.name} saved.", "success")
            return redirect(url_for("admin.organization", org_id=org.public_id))
    return form_page("sso/configure.html", form, org=org, provider=provider, callback_url=services.redirect_uri())
