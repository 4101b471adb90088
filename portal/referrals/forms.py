"""Referral forms: the partner's submission, notes, cancellation; staff transitions."""

from datetime import date

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DateTimeLocalField,
    EmailField,
    MultipleFileField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, ValidationError

from portal.core.forms import clean_text, one_line
from portal.core.phi import normalize
from portal.core.time import practice_today
from portal.core.validators import US_STATES, parse_uuid, validate_npi
from portal.patients.models import Sex
from portal.referrals.codes import MAX_CODES, parse_codes
from portal.referrals.models import AppointmentMode, LicenseKind, Service, Urgency, VisitPreference
from portal.referrals.submission import NewPatient, ReferralSubmission

TEXT_LIMIT = 4000
EARLIEST_BIRTH = date(1900, 1, 1)


def _choices(enum_cls, blank: str | None = None):
    options = [SelectChoice(m.value, m.label) for m in enum_cls]
    return ([SelectChoice("", blank)] if blank else []) + options


def validate_birth_date(form, field):
    if field.data is None:
        return
    if field.data > practice_today():
        raise ValidationError("The date of birth cannot be in the future.")
    if field.data < EARLIEST_BIRTH:
        raise ValidationError("Check the year: dates of birth before 1900 are not accepted.")


def validate_phone(form, field):
    if field.data and not normalize.us_phone(field.data).startswith("+1"):
        raise ValidationError("Enter a US phone number with area code, e.g. (608) 555-0142.")
    if field.data and len(normalize.us_phone(field.data)) != 12:
        raise ValidationError("Enter a US phone number with area code, e.g. (608) 555-0142.")


def validate_icd10(form, field):
    codes, invalid = parse_codes(field.data or "")
    if invalid:
        raise ValidationError(f"Not ICD-10-CM codes: {', '.join(invalid)}. Use the form M54.50.")
    if not codes:
        raise ValidationError("Enter at least one ICD-10-CM code.")
    if len(codes) > MAX_CODES:
        raise ValidationError(f"Enter at most {MAX_CODES} codes.")


class ReferralForm(FlaskForm):
    given_name = StringField("Given name", validators=[DataRequired(), Length(max=100)], filters=[one_line])
    family_name = StringField("Family name", validators=[DataRequired(), Length(max=100)], filters=[one_line])
    birth_date = DateField("Date of birth", validators=[InputRequired("Enter the date of birth."), validate_birth_date])
    sex = SelectField("Sex", choices=_choices(Sex), default=Sex.UNKNOWN.value)
    phone = StringField(
        "Phone",
        validators=[DataRequired(), Length(max=32), validate_phone],
        filters=[one_line],
        render_kw={"autocomplete": "off", "inputmode": "tel"},
    )
    email = EmailField(
        "E-mail",
        validators=[Optional(), Email(check_deliverability=False), Length(max=254)],
        filters=[one_line],
        render_kw={"autocomplete": "off"},
    )
    address_line1 = StringField("Street address", validators=[Optional(), Length(max=200)], filters=[one_line])
    address_line2 = StringField("Address line 2", validators=[Optional(), Length(max=200)], filters=[one_line])
    city = StringField("City", validators=[Optional(), Length(max=100)], filters=[one_line])
    postal_code = StringField("ZIP code", validators=[Optional(), Length(max=10)], filters=[one_line])
    us_state = SelectField(
        "State",
        choices=[SelectChoice("", "Choose a state")] + [SelectChoice(s) for s in US_STATES],
        validators=[DataRequired("Choose the patient's state.")],
    )
    reason = TextAreaField(
        "Reason for referral", validators=[DataRequired(), Length(max=TEXT_LIMIT)], filters=[clean_text]
    )
    diagnosis = StringField("Diagnosis", validators=[Optional(), Length(max=300)], filters=[one_line])
    icd10_codes = StringField(
        "ICD-10-CM codes",
        validators=[validate_icd10],
        filters=[one_line],
        description="One or more, separated by commas, e.g. M54.50, M51.26.",
        # Required like the server requires it (validate_icd10), so the browser says so before sending.
        render_kw={"list": "icd10-suggestions", "autocomplete": "off", "required": True},
    )
    requested_service = SelectField(
        "Requested service", choices=_choices(Service), default=Service.EVALUATE_AND_TREAT.value
    )
    urgency = RadioField("Urgency", choices=_choices(Urgency), default=Urgency.ROUTINE.value)
    visit_preference = RadioField(
        "Visit preference", choices=_choices(VisitPreference), default=VisitPreference.EITHER.value
    )
    insurance_payer = StringField("Insurance payer", validators=[Optional(), Length(max=120)], filters=[one_line])
    insurance_member_id = StringField(
        "Member ID", validators=[Optional(), Length(max=40)], filters=[one_line], render_kw={"autocomplete": "off"}
    )
    clinician = SelectField("Referring clinician", validators=[DataRequired()])
    clinician_npi = StringField(
        "Clinician NPI",
        validators=[Optional(), validate_npi],
        filters=[one_line],
        description="10 digits; we check the check digit.",
    )
    notes = TextAreaField(
        "Notes for the practice", validators=[Optional(), Length(max=TEXT_LIMIT)], filters=[clean_text]
    )
    attachments = MultipleFileField(
        "Attachments",
        description="PDF, JPEG or PNG; up to 10 MB each, 25 MB in all.",
        render_kw={"accept": ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"},
    )

    def submission(self):
        """What the form holds, typed: a ReferralSubmission (the FHIR intake fills this same form)."""
        address = {
            "line1": self.address_line1.data or None,
            "line2": self.address_line2.data or None,
            "city": self.city.data or None,
            "postal_code": self.postal_code.data or None,
        }
        patient = NewPatient(
            given_name=self.given_name.data,
            family_name=self.family_name.data,
            birth_date=self.birth_date.data,
            phone=self.phone.data,
            us_state=self.us_state.data,
            sex=Sex(self.sex.data),
            email=self.email.data or None,
            address=address,
            insurance_payer=self.insurance_payer.data or None,
            insurance_member_id=self.insurance_member_id.data or None,
        )
        return ReferralSubmission(
            patient=patient,
            clinician=parse_uuid(self.clinician.data),
            reason=self.reason.data,
            icd10_codes=parse_codes(self.icd10_codes.data)[0],
            requested_service=Service(self.requested_service.data),
            urgency=Urgency(self.urgency.data),
            visit_preference=VisitPreference(self.visit_preference.data),
            diagnosis=self.diagnosis.data or None,
            notes=self.notes.data or None,
            clinician_npi=self.clinician_npi.data or None,
        )


class NoteForm(FlaskForm):
    note = TextAreaField("Note", validators=[Optional(), Length(max=TEXT_LIMIT)], filters=[clean_text])
    attachments = MultipleFileField("Attachments", description="PDF, JPEG or PNG; up to 10 MB each.")

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if ok and not self.note.data and not any(f and f.filename for f in (self.attachments.data or [])):
            self.note.errors.append("Write a note or choose a file to attach.")
            return False
        return ok


class CancelForm(FlaskForm):
    reason = TextAreaField("Reason for cancelling", validators=[DataRequired(), Length(max=1000)], filters=[clean_text])


class TransitionForm(FlaskForm):
    target = SelectField("New status", validators=[DataRequired()])
    note = TextAreaField(
        "Note (required to decline or cancel)", validators=[Optional(), Length(max=1000)], filters=[clean_text]
    )
    first_visit_at = DateTimeLocalField(
        "First visit (date and time)", validators=[Optional()], format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
    )
    appointment_mode = SelectField(
        "Visit mode", choices=_choices(AppointmentMode, blank="Choose"), validators=[Optional()]
    )


class LookupForm(FlaskForm):
    """Patient look-up by last name and date of birth: POSTed, so nothing lands in a URL."""

    family_name = StringField("Family name", validators=[DataRequired(), Length(max=100)], filters=[one_line])
    birth_date = DateField("Date of birth", validators=[InputRequired("Enter the date of birth.")])


class DuplicateForm(FlaskForm):
    decision = SelectField("Decision", validators=[DataRequired()])


class LicenseForm(FlaskForm):
    us_state = SelectField(
        "State",
        choices=[SelectChoice("", "Choose a state")] + [SelectChoice(s) for s in US_STATES],
        validators=[DataRequired("Choose a state.")],
    )
    kind = SelectField("Kind", choices=_choices(LicenseKind))
    effective_on = DateField("Effective from", validators=[InputRequired("Enter the date it takes effect.")])
    expires_on = DateField("Expires on", validators=[Optional()])

    def validate_expires_on(self, field):
        if field.data and self.effective_on.data and field.data < self.effective_on.data:
            raise ValidationError("The expiry date must be after the effective date.")
