"""Single sign-on forms: the partner's e-mail address, the provider look-up, and its settings."""

import re

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import DataRequired, Email, Length, Optional, Regexp, ValidationError

from portal.core.forms import one_line
from portal.core.validators import strip_filter
from portal.sso.models import EmailTrust

SCOPE_TOKEN = r"[\x21\x23-\x5B\x5D-\x7E]+"  # RFC 6749 3.3
MAX_GROUPS = 50


class SsoStartForm(FlaskForm):
    email = EmailField(
        "Work e-mail",
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)],
        filters=[strip_filter],
        render_kw={"autocomplete": "username"},
        description="We send you to your organization's sign-in page.",
    )


class LookUpForm(FlaskForm):
    issuer = StringField(
        "Issuer URL",
        validators=[DataRequired(), Length(max=500)],
        filters=[strip_filter],
        render_kw={"inputmode": "url", "autocomplete": "off", "spellcheck": "false"},
        description="The provider's issuer, e.g. https://hospital.okta.com or "
        "https://login.microsoftonline.com/<tenant id>/v2.0. A discovery address works too.",
    )


def group_list(text: str | None) -> list[str]:
    """Group names or ids, one per line."""
    return sorted({line.strip() for line in (text or "").splitlines() if line.strip()})


def _groups(form, field) -> None:
    names = group_list(field.data)
    if len(names) > MAX_GROUPS or any(len(n) > 255 for n in names):
        raise ValidationError(f"At most {MAX_GROUPS} groups, each up to 255 characters.")


class OidcProviderForm(FlaskForm):
    issuer = StringField(
        "Issuer URL",
        validators=[DataRequired(), Length(max=500)],
        filters=[strip_filter],
        render_kw={"inputmode": "url", "autocomplete": "off", "spellcheck": "false"},
        description="Exactly as the provider publishes it (a pasted discovery address is shortened to it).",
    )
    client_id = StringField("Client ID", validators=[DataRequired(), Length(max=255)], filters=[strip_filter])
    client_secret = PasswordField(
        "Client secret",
        validators=[Optional(), Length(max=512)],
        render_kw={"autocomplete": "off"},
        description="Stored encrypted. Leave empty to keep the current secret.",
    )
    display_name = StringField(
        "Name people see",
        validators=[Optional(), Length(max=100)],
        filters=[one_line],
        description="As in \u201cSign in with Lakeside Okta\u201d. Empty: the organization's name.",
    )
    domains = TextAreaField(
        "E-mail domains",
        validators=[DataRequired(), Length(max=3000)],
        description="One per line, e.g. hospital.org. A new domain routes nobody until it is verified.",
    )
    email_trust = RadioField(
        "Trust the provider's e-mail addresses",
        choices=[SelectChoice(t.value, t.label) for t in EmailTrust],
        default=EmailTrust.CLAIM_REQUIRED.value,
        validators=[DataRequired()],
    )
    extra_scopes = StringField(
        "Extra scopes",
        validators=[
            Optional(),
            Length(max=255),
            Regexp(rf"^{SCOPE_TOKEN}( {SCOPE_TOKEN})*$", message="Scopes are words separated by single spaces."),
        ],
        filters=[one_line],
        description="Beyond openid email profile, e.g. groups (Okta custom authorization servers).",
    )
    is_enabled = BooleanField("Offer single sign-on to this organization's users", default=True)
    is_sso_only = BooleanField(
        "Single sign-on only",
        description="Password sign-in, password reset and password set-up are refused for this organization's "
        "users; invitations tell them to sign in here. Password sessions end when you turn this on.",
    )
    is_jit_enabled = BooleanField(
        "Create accounts at first sign-in (just in time)",
        description="A trusted address in a verified domain without a portal account gets a partner account.",
    )
    groups_claim = StringField(
        "Groups claim",
        validators=[Optional(), Length(max=64), Regexp(r"^[A-Za-z0-9_:./-]+$", message="A claim name, e.g. groups.")],
        filters=[strip_filter],
        description="Optional: groups (Okta) or roles (Entra ID app roles). With it, the role is set at every "
        "sign-in, and someone in none of the groups below is refused and deactivated.",
    )
    partner_groups = TextAreaField("Groups for partners", validators=[Optional(), Length(max=13000), _groups])
    admin_groups = TextAreaField("Groups for partner admins", validators=[Optional(), Length(max=13000), _groups])
    is_idp_mfa_trusted = BooleanField(
        "Trust the provider's two-step verification",
        description="When the provider says it used a second factor (amr: mfa, otp, hwk or sc), the portal does "
        "not ask for its own code. Never where passkeys are required.",
    )

    def validate_groups_claim(self, field) -> None:
        has_groups = group_list(self.partner_groups.data) or group_list(self.admin_groups.data)
        if field.data and not has_groups:
            raise ValidationError("Name at least one group for partners or partner admins.")
        if has_groups and not field.data:
            raise ValidationError("Name the claim that carries the groups.")

    def validate_extra_scopes(self, field) -> None:
        if field.data and re.search(r"\bopenid\b", field.data):
            raise ValidationError("openid is always asked for; list only extra scopes.")
