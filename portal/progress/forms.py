"""Progress update forms (staff)."""

from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import DateField, HiddenField, IntegerField, SelectChoice, SelectField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import HiddenInput

from portal.consent.models import Category
from portal.core.forms import clean_text
from portal.extensions import db
from portal.progress.models import UPDATE_CATEGORIES
from portal.referrals.models import Referral

BODY_LIMIT = 10000


class UpdateForm(FlaskForm):
    referral = SelectField("Episode (referral)", validators=[DataRequired()])
    visit_date = DateField("Visit date", validators=[InputRequired("Enter the visit date.")])
    category = SelectField("Kind", choices=[SelectChoice(c.value, c.label) for c in UPDATE_CATEGORIES])
    body = TextAreaField(
        "Update",
        validators=[DataRequired(), Length(max=BODY_LIMIT)],
        filters=[clean_text],
        description="What the referrer should know: progress, plan, anything they can help with.",
    )
    action = HiddenField(default="submit")

    def chosen_category(self) -> Category:
        return Category(self.category.data)


def update_form(patient, form: UpdateForm | None = None) -> UpdateForm:
    """The update form with the patient's episodes (referrals) to choose from, newest first."""
    form = form or UpdateForm()
    referrals = db.session.scalars(
        select(Referral).where(Referral.patient_id == patient.id).order_by(Referral.submitted_at.desc())
    ).all()
    form.referral.choices = [SelectChoice(str(r.public_id), f"{r.reference} ({r.status.label})") for r in referrals]
    return form


class ReviseForm(FlaskForm):
    visit_date = DateField("Visit date", validators=[InputRequired("Enter the visit date.")])
    body = TextAreaField("Update", validators=[DataRequired(), Length(max=BODY_LIMIT)], filters=[clean_text])


class DecisionForm(FlaskForm):
    # Bounded: the value goes into SQL, and a 40-digit "version" must be a 4xx, not an overflow.
    version = IntegerField(widget=HiddenInput(), validators=[InputRequired(), NumberRange(1, 2**31 - 1)])
    note = TextAreaField(
        "Note to the author (to return it)", validators=[Optional(), Length(max=2000)], filters=[clean_text]
    )
