"""Forms: staff ask the patient; the patient confirms who they are and answers; admins edit the wording."""

from datetime import date

from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from portal.accounts.models import User
from portal.consent.forms import CheckboxesField
from portal.core.forms import clean_text, one_line
from portal.econsent.models import Channel, Language, Topic
from portal.extensions import db
from portal.partners.models import Organization
from portal.referrals.models import Referral

# --- staff -------------------------------------------------------------------------------------


class RequestForm(FlaskForm):
    organization = SelectField("Shared with (organization)", validators=[DataRequired()])
    clinician = SelectField(
        "Only this clinician", validators=[Optional()], description="Leave empty to share with the whole organization."
    )
    topics = CheckboxesField(
        "What to ask about",
        choices=[SelectChoice(t.value, t.label) for t in Topic],
        validators=[DataRequired("Choose at least one thing to ask about.")],
    )
    consent_expires_on = DateField(
        "Consent lasts until",
        validators=[Optional()],
        description="Leave empty if it lasts until the patient stops it.",
    )
    channel = RadioField(
        "How the patient gets it",
        choices=[SelectChoice(c.value, c.label) for c in Channel],
        default=Channel.QR.value,
        validators=[DataRequired("Choose how the patient gets the request.")],
    )
    language = SelectField(
        "Language the patient reads first",
        choices=[SelectChoice(lang.value, lang.label) for lang in Language],
        default=Language.ENGLISH.value,
        description="The patient can switch on their page.",
    )

    def chosen_topics(self) -> list[Topic]:
        return [Topic(t) for t in self.topics.data or []]


def request_form(patient, form: RequestForm | None = None) -> RequestForm:
    """The request form with its choices; the organization of the patient's newest referral preselected."""
    form = form or RequestForm()
    orgs = db.session.scalars(select(Organization).order_by(Organization.name)).all()
    form.organization.choices = [SelectChoice(str(o.public_id), o.name) for o in orgs]
    clinicians = db.session.scalars(
        select(User).where(User.organization_id.is_not(None), User.is_enabled.is_(True)).order_by(User.full_name)
    ).all()
    form.clinician.choices = [SelectChoice("", "Whole organization")] + [
        SelectChoice(str(u.public_id), f"{u.full_name} ({u.organization.name})") for u in clinicians
    ]
    if not form.is_submitted():
        newest = db.session.scalar(
            select(Organization.public_id)
            .join(Referral, Referral.organization_id == Organization.id)
            .where(Referral.patient_id == patient.id)
            .order_by(Referral.submitted_at.desc())
            .limit(1)
        )
        if newest is not None:
            form.organization.data = str(newest)
        form.topics.data = [t.value for t in Topic if t is not Topic.SUCCESS_STORY]
    return form


class ReissueForm(FlaskForm):
    channel = RadioField(
        "How the patient gets the new link",
        choices=[SelectChoice(c.value, c.label) for c in (Channel.EMAIL, Channel.QR)],
        validators=[DataRequired("Choose how the patient gets the new link.")],
    )


class ActionForm(FlaskForm):
    """A button that changes something: the CSRF token only."""


class KioskForm(FlaskForm):
    """Handing the device over signs the staff member out: asked for explicitly, never by accident."""

    hand_over = BooleanField(
        "I am handing this device to the patient (you will be signed out)",
        validators=[DataRequired("Tick the box to hand this device to the patient.")],
    )


class TextForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)], filters=[one_line])
    body = TextAreaField(
        "Text",
        validators=[DataRequired(), Length(max=5000)],
        filters=[clean_text],
        description="Short sentences and everyday words (about a 6th-grade reading level). "
        "A blank line starts a new paragraph.",
    )


# --- the patient -------------------------------------------------------------------------------


class LanguageForm(FlaskForm):
    language = SelectField(choices=[SelectChoice(lang.value, lang.label) for lang in Language])
    back = HiddenField()


class IdentityForm(FlaskForm):
    birth_month = StringField(lazy_gettext("Month"), filters=[one_line])
    birth_day = StringField(lazy_gettext("Day"), filters=[one_line])
    birth_year = StringField(lazy_gettext("Year"), filters=[one_line])
    phone_last4 = StringField(lazy_gettext("Last 4 digits of your phone number"), filters=[one_line])

    def birth_date(self) -> date | None:
        """The date typed, or None with a message on the fields (validate first)."""
        parts = (self.birth_month.data, self.birth_day.data, self.birth_year.data)
        if not all(p and p.isascii() and p.isdigit() and len(p) <= 4 for p in parts):
            self.birth_month.errors = [gettext("Enter your date of birth as numbers, like 4 12 1980.")]
            return None
        month, day, year = (int(p) for p in parts)
        try:
            born = date(year, month, day)
        except ValueError:
            born = None
        if born is None or year < 1900:
            self.birth_month.errors = [gettext("That is not a real date. Check the month, day and year.")]
            return None
        return born

    def phone_digits(self) -> str | None:
        value = self.phone_last4.data or ""
        if not (len(value) == 4 and value.isascii() and value.isdigit()):
            self.phone_last4.errors = [gettext("Enter the last 4 digits of your phone number.")]
            return None
        return value


ANSWER_CHOICES = [SelectChoice("yes", "yes"), SelectChoice("no", "no")]


class SignForm(FlaskForm):
    answer_progress_updates = RadioField(choices=ANSWER_CHOICES, validate_choice=False, validators=[Optional()])
    answer_outcome_scores = RadioField(choices=ANSWER_CHOICES, validate_choice=False, validators=[Optional()])
    answer_success_story = RadioField(choices=ANSWER_CHOICES, validate_choice=False, validators=[Optional()])
    signature_name = StringField(lazy_gettext("Your full name"), filters=[one_line])
    confirm = BooleanField()
    text_digest = HiddenField()

    def answers(self) -> dict[Topic, bool | None]:
        chosen = {}
        for topic in Topic:
            value = getattr(self, f"answer_{topic.value}").data
            chosen[topic] = {"yes": True, "no": False}.get(value)
        return chosen


class WithdrawForm(FlaskForm):
    confirm = BooleanField()
