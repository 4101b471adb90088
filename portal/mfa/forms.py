"""Second-factor forms. Codes are typed with or without spaces and dashes."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from portal.accounts.passwords import MAX_LENGTH
from portal.mfa import policy


def _code_field(label: str, description: str) -> StringField:
    return StringField(
        label,
        validators=[DataRequired(), Length(max=32)],
        description=description,
        render_kw={
            "autocomplete": "one-time-code",
            "inputmode": "text",
            "spellcheck": "false",
            "autocapitalize": "characters",
        },
    )


class VerifyForm(FlaskForm):
    code = _code_field(
        "Verification code",
        "The 6-digit code from your authenticator app. Lost your phone? Enter one of your recovery codes instead.",
    )
    remember = BooleanField("Remember this browser")


class EnrolForm(FlaskForm):
    code = _code_field("Code from the app", "Enter the 6-digit code your app shows for this portal.")


class ConfirmedEnrolForm(EnrolForm):
    """Signed in already: changing the second factor asks for the password again."""

    password = PasswordField(
        "Current password",
        validators=[DataRequired(), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )


class PasswordConfirmForm(FlaskForm):
    password = PasswordField(
        "Current password",
        validators=[DataRequired(), Length(max=MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )


class OrganizationPolicyForm(FlaskForm):
    is_mfa_required = BooleanField("Require two-step verification for this organization's users")
    is_device_trust_allowed = BooleanField("Let users remember a browser (skip the code there for up to 30 days)")
    # Rendered by templates/mfa/_organization_passkey_policy.html, with the marker field that tells
    # the policy view the box was on the page (an unticked box sends nothing).
    is_passkey_required = BooleanField(
        "Require a passkey to sign in",
        description="Phishing-resistant: users sign in with a passkey (or a recovery code), not an app code, "
        "and browsers are not remembered. Users without a passkey are asked to add one.",
    )

    def __init__(self, *args, obj=None, **kwargs):
        super().__init__(*args, obj=obj, **kwargs)
        if obj is not None and not self.is_submitted():
            self.is_passkey_required.data = policy.scope_requires_passkey(obj.id)


PASSKEY_POLICY_MARKER = "passkey_policy"


class PracticePolicyForm(FlaskForm):
    passkey_required = BooleanField(
        "Require a passkey for staff and admins",
        description="Staff and admins then sign in with a passkey (or a recovery code), not an app code, and "
        "browsers are not remembered. Those without a passkey are asked to add one at their next page.",
    )


class PasskeyRenameForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[DataRequired(), Length(max=64)],
        description="How you tell your passkeys apart, for example the device it is on.",
        render_kw={"autocomplete": "off", "maxlength": 64},
    )
