"""Consent forms (staff)."""

from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import (
    BooleanField,
    DateField,
    FileField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from portal.accounts.models import User
from portal.consent.models import Category, Method
from portal.core.forms import clean_text, one_line
from portal.core.time import practice_today
from portal.core.validators import parse_uuid
from portal.extensions import db
from portal.partners.models import Organization
from portal.referrals.models import Referral


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
    method = SelectField(
        "How it was obtained", choices=[SelectChoice(m.value, m.label) for m in Method if m.is_staff_choice]
    )
    witness = StringField("Witness (verbal consent)", validators=[Optional(), Length(max=200)], filters=[one_line])
    document = FileField("Signed form", description="PDF, JPEG or PNG; required for a signed form.")
    confirm_organization = BooleanField(
        "Share with an organization that never referred this patient",
        description="Tick only when the patient asked to share with that organization: it sent no referral for them.",
    )
    # Filled by consent_form(): the organizations that referred the patient, newest referral first.
    referring: list[Organization] = []

    def chosen_categories(self) -> list[Category]:
        return [Category(c) for c in self.categories.data]

    def chosen_method(self) -> Method:
        return Method(self.method.data)

    def needs_confirmation(self, organization: Organization) -> bool:
        """A consent for an organization that never referred the patient shares them with a stranger to
        their care: possible (the patient may ask for it), but only when staff confirm it explicitly."""
        return organization.id not in {o.id for o in self.referring} and not self.confirm_organization.data


def referring_organizations(patient) -> list[Organization]:
    """The organizations that referred the patient, the one of the newest referral first (one statement)."""
    rows = db.session.execute(
        select(Organization, func.max(Referral.submitted_at).label("latest"))
        .join(Referral, Referral.organization_id == Organization.id)
        .where(Referral.patient_id == patient.id)
        .group_by(Organization.id)
        .order_by(func.max(Referral.submitted_at).desc(), Organization.id)
    ).all()
    return [row[0] for row in rows]


def consent_form(patient, form: ConsentForm | None = None) -> ConsentForm:
    """The consent form with safe defaults: the organization that referred the patient (the newest
    referral's) chosen and listed first, only the chosen organization's clinicians offered, and the
    practice's today as the effective date. Other organizations stay choosable, behind a confirmation."""
    form = form or ConsentForm()
    referring = referring_organizations(patient)
    form.referring = referring
    referring_ids = {o.id for o in referring}
    others = db.session.scalars(select(Organization).order_by(Organization.name)).all()
    others = [SelectChoice(str(o.public_id), o.name) for o in others if o.id not in referring_ids]
    form.organization.choices = (
        {
            "Referred this patient": [SelectChoice(str(o.public_id), o.name) for o in referring],
            "Other organizations (need a confirmation)": others,
        }
        if referring
        else others
    )
    if not form.is_submitted():
        if referring:
            form.organization.data = str(referring[0].public_id)
        form.effective_on.data = practice_today()
    chosen = parse_uuid(form.organization.data)
    clinicians = (
        db.session.scalars(
            select(User)
            .join(Organization, User.organization_id == Organization.id)
            .where(Organization.public_id == chosen, User.is_enabled.is_(True))
            .order_by(User.full_name)
        ).all()
        if chosen
        else []
    )
    form.clinician.choices = [SelectChoice("", "Whole organization")] + [
        SelectChoice(str(u.public_id), u.full_name) for u in clinicians
    ]
    return form


class RevokeForm(FlaskForm):
    reason = TextAreaField("Reason for revoking", validators=[DataRequired(), Length(max=1000)], filters=[clean_text])
