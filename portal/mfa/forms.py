"""Second-factor forms. Codes are typed with or without spaces and dashes."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from portal.accounts.passwords import MAX_LENGTH


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
