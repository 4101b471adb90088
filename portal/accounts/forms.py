"""Inviting someone: the fields every invitation form has (admins and partner admins add their own)."""

from flask_wtf import FlaskForm
from wtforms import EmailField, SelectChoice, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, Length, Optional

from portal.core.permissions import Role
from portal.core.validators import strip_filter, validate_npi


class InviteForm(FlaskForm):
    full_name = StringField("Full name", validators=[DataRequired(), Length(max=200)], filters=[strip_filter])
    email = EmailField(
        "E-mail",
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)],
        filters=[strip_filter],
    )
    role = SelectField("Role", validators=[DataRequired()])
    npi = StringField("NPI (clinicians)", validators=[Optional(), validate_npi], filters=[strip_filter])
    submit = SubmitField("Send invitation")

    def __init__(self, roles: list[Role], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = [SelectChoice(r.value, r.label) for r in roles]
