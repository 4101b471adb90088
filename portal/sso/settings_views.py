"""Single sign-on settings pages: a practice admin's for any organization, a partner admin's for
their own only (the organization is never taken from the address: another's cannot be reached)."""

import uuid

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.core.forms import form_page
from portal.core.paging import cursor_arg, per_page_arg
from portal.core.permissions import Permission, requires
from portal.core.unit_of_work import begin_writing, reads_first
from portal.partners.queries import get_organization_or_404
from portal.sso import oidc, services, settings
from portal.sso.blueprint import bp
from portal.sso.domains import DomainError, parse
from portal.sso.forms import LookUpForm, OidcProviderForm, group_list
from portal.sso.models import EmailTrust
from portal.sso.queries import bound_identity_of, bound_users, provider_of

# --- a practice admin, any organization ---------------------------------------------------------


@bp.route("/admin/organizations/<uuid:org_id>/sso", methods=["GET", "POST"])
@requires(Permission.ORGANIZATIONS_MANAGE)
@reads_first  # looks the provider up before it saves
def configure(org_id: uuid.UUID):
    return _settings_page(get_organization_or_404(org_id), by_practice=True)


@bp.post("/admin/organizations/<uuid:org_id>/sso/test")
@requires(Permission.ORGANIZATIONS_MANAGE)
@reads_first
def test_connection(org_id: uuid.UUID):
    return _test_connection(get_organization_or_404(org_id), by_practice=True)


@bp.post("/admin/organizations/<uuid:org_id>/sso/test-sign-in")
@requires(Permission.ORGANIZATIONS_MANAGE)
@reads_first
def test_sign_in(org_id: uuid.UUID):
    return _test_sign_in(get_organization_or_404(org_id), by_practice=True)


@bp.post("/admin/organizations/<uuid:org_id>/sso/domains/<domain>/confirm")
@requires(Permission.ORGANIZATIONS_MANAGE)
def confirm_domain(org_id: uuid.UUID, domain: str):
    org = get_organization_or_404(org_id)
    try:
        settings.confirm_domain(current_user, org, domain.strip().lower())
    except settings.SsoConfigError as exc:
        flash(exc.message, "error")
        return _settings_page(org, by_practice=True, status=422)
    flash(f"{domain} is confirmed as {org.name}'s: it now routes sign-ins.", "success")
    return redirect(url_for("sso.configure", org_id=org.public_id))


@bp.get("/admin/organizations/<uuid:org_id>/sso/users")
@requires(Permission.ORGANIZATIONS_MANAGE)
def users(org_id: uuid.UUID):
    return _users_page(get_organization_or_404(org_id), by_practice=True)


@bp.post("/admin/organizations/<uuid:org_id>/sso/users/<uuid:user_id>/unlink")
@requires(Permission.ORGANIZATIONS_MANAGE)
def unlink(org_id: uuid.UUID, user_id: uuid.UUID):
    return _unlink(get_organization_or_404(org_id), user_id, by_practice=True)


# --- a partner admin, their own organization ----------------------------------------------------


@bp.route("/partner/sso", methods=["GET", "POST"])
@requires(Permission.PARTNER_SSO_MANAGE)
@reads_first
def partner_settings():
    return _settings_page(current_user.organization, by_practice=False)


@bp.post("/partner/sso/test")
@requires(Permission.PARTNER_SSO_MANAGE)
@reads_first
def partner_test_connection():
    return _test_connection(current_user.organization, by_practice=False)


@bp.post("/partner/sso/test-sign-in")
@requires(Permission.PARTNER_SSO_MANAGE)
@reads_first
def partner_test_sign_in():
    return _test_sign_in(current_user.organization, by_practice=False)


@bp.get("/partner/sso/users")
@requires(Permission.PARTNER_SSO_MANAGE)
def partner_users():
    return _users_page(current_user.organization, by_practice=False)


@bp.post("/partner/sso/users/<uuid:user_id>/unlink")
@requires(Permission.PARTNER_SSO_MANAGE)
def partner_unlink(user_id: uuid.UUID):
    return _unlink(current_user.organization, user_id, by_practice=False)


# --- shared -------------------------------------------------------------------------------------


def settings_url(org, by_practice: bool) -> str:
    return url_for("sso.configure", org_id=org.public_id) if by_practice else url_for("sso.partner_settings")


def _current(provider, org) -> dict:
    if provider is None:
        return {}
    return {
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "display_name": provider.display_name,
        "domains": "\n".join(provider.domain_names),
        "email_trust": provider.email_trust.value,
        "extra_scopes": provider.extra_scopes,
        "is_enabled": provider.is_enabled,
        "is_sso_only": org.is_sso_only,
        "is_jit_enabled": provider.is_jit_enabled,
        "groups_claim": provider.groups_claim,
        "partner_groups": "\n".join(provider.partner_groups or []),
        "admin_groups": "\n".join(provider.admin_groups or []),
        "is_idp_mfa_trusted": org.is_idp_mfa_trusted,
    }


def _forms(org, provider, by_practice: bool):
    """The look-up form and the settings form, each reading the request only when it was the one
    posted to the settings page."""
    posted = request.method == "POST" and request.endpoint in ("sso.configure", "sso.partner_settings")
    looking_up = posted and "lookup-issuer" in request.form
    saving = posted and not looking_up
    lookup = LookUpForm(prefix="lookup", formdata=request.form if looking_up else None)
    form = OidcProviderForm(formdata=request.form if saving else None, data=_current(provider, org))
    if not by_practice:
        del form.is_idp_mfa_trusted  # a practice decision: partner admins see it, cannot change it
    return lookup, form, looking_up, saving


def _settings_page(org, *, by_practice: bool, report=None, status: int | None = None):
    provider = provider_of(org)
    lookup, form, looking_up, saving = _forms(org, provider, by_practice)
    discovered = None
    if looking_up:
        if lookup.validate():
            try:
                meta = settings.look_up(lookup.issuer.data)
            except settings.SsoConfigError as exc:
                lookup.issuer.errors.append(exc.message)
            else:
                discovered = meta.snapshot()
                form.issuer.data = meta.issuer
        status = 422 if lookup.errors else 200
    elif saving and form.validate():
        try:
            values = _settings_from(form, by_practice)
            meta = settings.look_up(form.issuer.data)
            begin_writing()  # the provider answered: now change the settings
            settings.save(current_user, org, values, meta, by_practice=by_practice)
        except settings.SsoConfigError as exc:
            form[exc.field].errors.append(exc.message)
        else:
            flash(f"Single sign-on settings of {org.name} saved.", "success")
            return redirect(settings_url(org, by_practice))
    elif saving:
        status = 422
    if saving and form.errors:
        status = 422
    return form_page(
        "sso/configure.html",
        form,
        status=status,
        lookup=lookup,
        org=org,
        provider=provider,
        discovered=discovered or (provider.discovery if provider else None),
        looked_up=discovered is not None,
        show_form=saving,  # a refused first save shows the form again, with its messages
        report=report,
        by_practice=by_practice,
        urls=_urls(org, by_practice),
        callback_url=services.redirect_uri(),
        post_logout_url=services.post_logout_uri(),
        backchannel_url=services.backchannel_uri(),
    )


def _urls(org, by_practice: bool) -> dict:
    if by_practice:
        return {
            "settings": url_for("sso.configure", org_id=org.public_id),
            "test": url_for("sso.test_connection", org_id=org.public_id),
            "test_sign_in": url_for("sso.test_sign_in", org_id=org.public_id),
            "users": url_for("sso.users", org_id=org.public_id),
            "back": url_for("admin.organization", org_id=org.public_id),
        }
    return {
        "settings": url_for("sso.partner_settings"),
        "test": url_for("sso.partner_test_connection"),
        "test_sign_in": url_for("sso.partner_test_sign_in"),
        "users": url_for("sso.partner_users"),
        "back": url_for("partners.users"),
    }


def _settings_from(form: OidcProviderForm, by_practice: bool) -> settings.Settings:
    try:
        domains = parse(form.domains.data)
    except DomainError as exc:
        raise settings.SsoConfigError("domains", str(exc)) from None
    return settings.Settings(
        issuer=form.issuer.data,
        client_id=form.client_id.data,
        client_secret=form.client_secret.data or None,
        display_name=form.display_name.data or None,
        domains=domains,
        enabled=form.is_enabled.data,
        sso_only=form.is_sso_only.data,
        email_trust=EmailTrust(form.email_trust.data),
        jit=form.is_jit_enabled.data,
        extra_scopes=form.extra_scopes.data or None,
        groups_claim=form.groups_claim.data or None,
        partner_groups=group_list(form.partner_groups.data),
        admin_groups=group_list(form.admin_groups.data),
        mfa_trusted=form.is_idp_mfa_trusted.data if by_practice else None,
    )


def _provider_or_404(org):
    provider = provider_of(org)
    if provider is None:
        abort(404)
    return provider


def _test_connection(org, *, by_practice: bool):
    provider = _provider_or_404(org)
    report = settings.run_connection_test(provider)  # the network first, then the write
    begin_writing()
    settings.record_connection_test(current_user, provider_of(org), report)
    # 200 either way: the test ran and its report is the answer (a 4xx would undo its record).
    return _settings_page(org, by_practice=by_practice, report=report, status=200)


def _test_sign_in(org, *, by_practice: bool):
    provider = _provider_or_404(org)
    try:
        url = services.begin(provider, login_hint=None, next_path=None, actor=current_user)
    except oidc.OidcError as exc:
        flash(settings.config_message(exc), "error")
        down = exc.reason in ("provider_timeout", "provider_unreachable")
        return _settings_page(org, by_practice=by_practice, status=503 if down else 422)
    return render_template("sso/redirect.html", url=url, label=provider.label, test=True)


def _users_page(org, *, by_practice: bool):
    page = bound_users(org, cursor=cursor_arg(), per_page=per_page_arg())
    return render_template("sso/users.html", org=org, page=page, by_practice=by_practice, urls=_urls(org, by_practice))


def _unlink(org, user_id: uuid.UUID, *, by_practice: bool):
    identity = bound_identity_of(org, user_id)
    if identity is None:
        abort(404)
    email = identity.user.email
    settings.unlink(current_user, org, identity)
    flash(f"{email} is unlinked: the next sign-in binds it again, by e-mail address.", "success")
    return redirect(_urls(org, by_practice)["users"])
