"""Forms of the relationship workspace and the partners' events page."""

from datetime import datetime, timedelta

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    EmailField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, Optional, ValidationError

from portal.core.time import now_utc, practice_to_utc
from portal.core.validators import strip_filter
from portal.partners.models import RelationshipStatus
from portal.relationships.models import EventKind, RsvpResponse, TouchpointKind

NO_PHI = "About the relationship only: never patient names or other patient information."


class RelationshipForm(FlaskForm):
    status = SelectField(
        "Relationship", choices=[SelectChoice(s.value, s.value.capitalize()) for s in RelationshipStatus]
    )
    owner = SelectField("Owner on staff", validators=[Optional()])
    # Its own id: the touchpoint form on the same page has a next_check_in field too.
    next_check_in = DateField("Next check-in", validators=[Optional()], id="relationship-next-check-in")

    def __init__(self, staff, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner.choices = [SelectChoice("", "— Nobody yet —")] + [
            SelectChoice(str(u.public_id), u.full_name) for u in staff
        ]


class TouchpointForm(FlaskForm):
    kind = SelectField("Kind", choices=[SelectChoice(k.value, k.label) for k in TouchpointKind])
    occurred_on = DateField("Date", validators=[DataRequired(message="Enter the date it happened.")])
    note = TextAreaField("Note", validators=[Optional(), Length(max=1000)], filters=[strip_filter], description=NO_PHI)
    next_check_in = DateField(
        "Next check-in", validators=[Optional()], description="Optional: when to get in touch next."
    )

    def validate_occurred_on(self, field):
        if field.data and field.data > (now_utc() + timedelta(days=1)).date():
            raise ValidationError("A touchpoint is logged once it has happened: the date cannot be in the future.")

    def validate_next_check_in(self, field):
        if field.data and self.occurred_on.data and field.data < self.occurred_on.data:
            raise ValidationError("The next check-in comes after this touchpoint.")


class ContactForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)], filters=[strip_filter])
    title = StringField("Role or title", validators=[Optional(), Length(max=120)], filters=[strip_filter])
    email = EmailField(
        "E-mail", validators=[Optional(), Email(check_deliverability=False), Length(max=254)], filters=[strip_filter]
    )
    phone = StringField("Phone", validators=[Optional(), Length(max=40)], filters=[strip_filter])
    is_primary = BooleanField("Main contact")


class ImportForm(FlaskForm):
    file = FileField(
        "CSV file",
        validators=[FileRequired("Choose a CSV file.")],
        description="Columns: name (required), kind, city, state, npi, owner_email, next_check_in, "
        "contact_name, contact_title, contact_email, contact_phone.",
    )


class EventForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)], filters=[strip_filter])
    kind = SelectField("Kind", choices=[SelectChoice(k.value, k.label) for k in EventKind])
    starts_at = DateTimeLocalField(
        "Starts", validators=[DataRequired(message="Enter the date and time.")], description="Practice time."
    )
    location = StringField(
        "Where",
        validators=[Optional(), Length(max=200)],
        filters=[strip_filter],
        description="An address, a room, or the webinar link.",
    )
    description = TextAreaField("Description", validators=[Optional(), Length(max=4000)], filters=[strip_filter])
    is_published = BooleanField("Publish now (partners see it)", default=True)

    def starts_at_utc(self) -> datetime:
        """The form's wall-clock time is the practice's."""
        return practice_to_utc(self.starts_at.data)


class ResourceForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)], filters=[strip_filter])
    description = TextAreaField("Description", validators=[Optional(), Length(max=1000)], filters=[strip_filter])
    file = FileField("PDF file", validators=[FileRequired("Choose a PDF file.")], description="Up to 10 MB.")
    is_published = BooleanField("Publish now (partners see it)", default=True)


class RsvpForm(FlaskForm):
    response = SelectField("Your answer", choices=[SelectChoice(r.value, r.label) for r in RsvpResponse])
