"""Forms for organizations and invitations."""

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from portal.accounts.forms import InviteForm
from portal.core.permissions import Role
from portal.core.validators import US_STATES, strip_filter, validate_npi
from portal.partners.models import OrganizationKind


class OrganizationForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)], filters=[strip_filter])
    kind = SelectField(
        "Kind", choices=[SelectChoice(k.value, k.label) for k in OrganizationKind], validators=[DataRequired()]
    )
    city = StringField("City", validators=[Optional(), Length(max=100)], filters=[strip_filter])
    us_state = SelectField(
        "State", choices=[SelectChoice("", "—")] + [SelectChoice(s) for s in US_STATES], validators=[Optional()]
    )
    npi = StringField("Organization NPI", validators=[Optional(), validate_npi], filters=[strip_filter])
    submit = SubmitField("Create organization")


class AdminInviteForm(InviteForm):
    organization = SelectField(
        "Organization",
        validators=[Optional()],
        description="Required for partner roles; leave empty for practice staff.",
    )

    def __init__(self, organizations, *args, **kwargs):
        super().__init__(list(Role), *args, **kwargs)
        self.organization.choices = [SelectChoice("", "— Practice staff —")] + [
            SelectChoice(str(o.public_id), o.name) for o in organizations
        ]
