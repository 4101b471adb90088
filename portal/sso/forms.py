"""Single sign-on forms: the partner's e-mail address, and the admin's provider settings."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField, TextAreaField, URLField
from wtforms.validators import DataRequired, Email, Length, Optional

from portal.core.validators import strip_filter


class SsoStartForm(FlaskForm):
    email = EmailField(
        "Work e-mail",
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)],
        filters=[strip_filter],
        render_kw={"autocomplete": "username"},
        description="We send you to your organization's sign-in page.",
    )


class OidcProviderForm(FlaskForm):
    issuer = URLField(
        "Issuer URL",
        validators=[DataRequired(), Length(max=255)],
        filters=[strip_filter],
        description="Exactly as the provider publishes it, e.g. https://login.hospital.org/realms/staff",
    )
    client_id = StringField("Client ID", validators=[DataRequired(), Length(max=255)], filters=[strip_filter])
    client_secret = PasswordField(
        "Client secret",
        validators=[Optional(), Length(max=512)],
        render_kw={"autocomplete": "off"},
        description="Stored encrypted. Leave empty to keep the current secret.",
    )
    domains = TextAreaField(
        "Allowed e-mail domains",
        validators=[DataRequired(), Length(max=2000)],
        description="One per line, e.g. hospital.org. Only verified addresses in these "
        "domains are matched to this organization's accounts.",
    )
    is_enabled = BooleanField("Offer single sign-on to this organization's users", default=True)
