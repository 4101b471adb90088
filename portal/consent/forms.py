"""Consent forms (staff)."""

from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, FileField, SelectChoice, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from portal.accounts.models import User
from portal.consent.models import Category, Method
from portal.core.forms import clean_text, one_line
from portal.extensions import db
from portal.partners.models import Organization


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ConsentForm(FlaskForm):
    organization = SelectField("Shared with (organization)", validators=[DataRequired()])
    clinician = SelectField(
        "Only this clinician", validators=[Optional()], description="Leave empty to share with the whole organization."
    )
    categories = CheckboxesField(
        "Information the patient agrees to share",
        choices=[SelectChoice(c.value, c.label) for c in Category],
        validators=[DataRequired("Choose at least one kind of information.")],
    )
    effective_on = DateField("Effective from", validators=[InputRequired("Enter the date it takes effect.")])
    expires_on = DateField("Expires on", validators=[Optional()], description="Leave empty if it does not expire.")
    method = SelectField("How it was obtained", choices=[SelectChoice(m.value, m.label) for m in Method])
    witness = StringField("Witness (verbal consent)", validators=[Optional(), Length(max=200)], filters=[one_line])
    document = FileField("Signed form", description="PDF, JPEG or PNG; required for a signed form.")

    def chosen_categories(self) -> list[Category]:
        return [Category(c) for c in self.categories.data]

    def chosen_method(self) -> Method:
        return Method(self.method.data)


def consent_form(form: ConsentForm | None = None) -> ConsentForm:
    """The consent form with its choices: every organization, and every enabled clinician with theirs."""
    form = form or ConsentForm()
    orgs = db.session.scalars(select(Organization).order_by(Organization.name)).all()
    form.organization.choices = [SelectChoice(str(o.public_id), o.name) for o in orgs]
    clinicians = db.session.scalars(
        select(User).where(User.organization_id.is_not(None), User.is_enabled.is_(True)).order_by(User.full_name)
    ).all()
    form.clinician.choices = [SelectChoice("", "Whole organization")] + [
        SelectChoice(str(u.public_id), f"{u.full_name} ({u.organization.name})") for u in clinicians
    ]
    return form


class RevokeForm(FlaskForm):
    reason = TextAreaField("Reason for revoking", validators=[DataRequired(), Length(max=1000)], filters=[clean_text])
