"""Admin forms for API clients: a partner organization's EHR, its public keys and scopes."""

import json

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectChoice, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from portal.api.smart import SCOPES
from portal.core.forms import one_line
from portal.core.validators import strip_filter
from portal.referrals.forms import ReferralForm, validate_phone


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ApiClientForm(FlaskForm):
    jwks = TextAreaField(
        "Public keys (JWKS JSON)",
        validators=[Optional(), Length(max=20000)],
        filters=[strip_filter],
        description='The EHR\'s public key set, {"keys": [...]}: RSA (RS384) or P-384 (ES384), '
        "each with a kid. Private keys are refused.",
    )
    jwks_url = StringField(
        "Or a JWKS URL",
        validators=[Optional(), Length(max=500)],
        filters=[strip_filter],
        description="https only; fetched when the client asks for a token, cached five minutes.",
    )
    scopes = CheckboxesField("Allowed scopes", choices=[SelectChoice(s, f"{s}: {d}") for s, d in SCOPES.items()])

    def validate_jwks(self, field):
        if field.data:
            try:
                json.loads(field.data)
            except ValueError:
                raise ValidationError("This is not valid JSON.") from None

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if ok and not self.jwks.data and not self.jwks_url.data:
            self.jwks.errors.append("Give the public keys, or the URL where they are published.")
            return False
        return ok


class NewApiClientForm(ApiClientForm):
    name = StringField(
        "Name",
        validators=[DataRequired(), Length(max=200)],
        filters=[strip_filter],
        description='E.g. the EHR product and site: "Epic – Lakeside Orthopedics".',
    )
    organization = SelectField("Partner organization", validators=[DataRequired()])

    def __init__(self, organizations, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization.choices = [SelectChoice("", "Choose")] + [
            SelectChoice(str(o.public_id), o.name) for o in organizations
        ]


class EditApiClientForm(ApiClientForm):
    is_enabled = BooleanField("Enabled", description="A disabled client gets no tokens, and its tokens stop working.")


class ApiReferralForm(ReferralForm):
    """The web form's rules for a referral that arrives as FHIR, less what FHIR and a referral do not need:
    an EHR may have no phone number for the patient (the web form, for people, still asks for one)."""

    phone = StringField("Phone", validators=[Optional(), Length(max=32), validate_phone], filters=[one_line])
