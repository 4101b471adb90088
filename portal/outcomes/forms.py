"""Score entry (staff), instruments (admin) and the report's date range."""

from flask import request
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp, ValidationError

from portal.core.forms import clean_text, one_line
from portal.core.time import practice_today
from portal.outcomes.models import Phase


class ScoreForm(FlaskForm):
    instrument = SelectField("Instrument", validators=[DataRequired("Choose the instrument.")])
    phase = SelectField("Phase", choices=[SelectChoice(p.value, p.label) for p in Phase])
    measured_on = DateField("Date measured", validators=[InputRequired("Enter the date the score was taken.")])
    score = DecimalField("Score", places=None, validators=[InputRequired("Enter the score as a number.")])
    visits = IntegerField(
        "Visits attended in this episode",
        validators=[Optional(), NumberRange(1, 400)],
        description="At discharge: how many visits the patient attended (for the reports).",
    )

    def __init__(self, instruments, **kwargs):
        super().__init__(**kwargs)
        self.instruments = {str(i.public_id): i for i in instruments}
        self.instrument.choices = [SelectChoice("", "Choose an instrument")] + [
            SelectChoice(key, f"{i.code}: {i.name} ({i.min_score:g}-{i.max_score:g})")
            for key, i in self.instruments.items()
        ]

    @property
    def chosen(self):
        return self.instruments.get(self.instrument.data or "")

    def validate_instrument(self, field):
        if field.data and self.chosen is None:
            raise ValidationError("Choose one of the listed instruments.")

    def validate_score(self, field):
        instrument = self.chosen
        if field.data is None or instrument is None:
            return
        if not instrument.min_score <= float(field.data) <= instrument.max_score:
            raise ValidationError(
                f"{instrument.code} scores run from {instrument.min_score:g} to {instrument.max_score:g}."
            )

    def validate_measured_on(self, field):
        if field.data and field.data > practice_today():
            raise ValidationError("The date cannot be in the future.")

    def validate_visits(self, field):
        if field.data is not None and self.phase.data != Phase.DISCHARGE.value:
            raise ValidationError("Record visits attended with the discharge score.")


class ScoreBatchForm(FlaskForm):
    """All the instruments of one visit in one form: the phase and date once, a score per instrument
    (``score-<instrument id>``; empty ones are skipped). Each score's message sits on its own field."""

    phase = SelectField("Phase", choices=[SelectChoice(p.value, p.label) for p in Phase])
    measured_on = DateField("Date measured", validators=[InputRequired("Enter the date the scores were taken.")])
    visits = IntegerField(
        "Visits attended in this episode",
        validators=[Optional(), NumberRange(1, 400)],
        description="At discharge: how many visits the patient attended (for the reports).",
    )

    def __init__(self, instruments, **kwargs):
        super().__init__(**kwargs)
        self.instrument_list = list(instruments)
        self.raw_scores: dict[str, str] = {}  # what was typed, by instrument public id
        self.score_errors: dict[str, str] = {}
        self.values = []  # (instrument, float) of the filled-in scores, once validated
        if not self.is_submitted():
            self.measured_on.data = practice_today()

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        formdata = request.form
        self.values = []
        for instrument in self.instrument_list:
            key = str(instrument.public_id)
            raw = (formdata.get(f"score-{key}") or "").strip()[:32]
            self.raw_scores[key] = raw
            if not raw:
                continue
            try:
                value = float(raw)
            except ValueError:
                self.score_errors[key] = f"Enter the {instrument.code} score as a number."
                continue
            if value != value or not instrument.min_score <= value <= instrument.max_score:  # NaN, or out of range
                self.score_errors[key] = (
                    f"{instrument.code} scores run from {instrument.min_score:g} to {instrument.max_score:g}."
                )
                continue
            self.values.append((instrument, value))
        if not self.values and not self.score_errors:
            self.form_errors.append("Enter at least one score.")
        return ok and not self.score_errors and bool(self.values)

    def validate_measured_on(self, field):
        if field.data and field.data > practice_today():
            raise ValidationError("The date cannot be in the future.")

    def validate_visits(self, field):
        if field.data is not None and self.phase.data != Phase.DISCHARGE.value:
            raise ValidationError("Record visits attended with the discharge score.")

    @property
    def has_errors(self) -> bool:
        return bool(self.errors or self.score_errors)


class InstrumentForm(FlaskForm):
    code = StringField(
        "Short code",
        validators=[DataRequired(), Length(max=16), Regexp(r"^[A-Za-z0-9-]+$", message="Letters, digits and dashes.")],
        filters=[one_line],
    )
    name = StringField("Name", validators=[DataRequired(), Length(max=200)], filters=[one_line])
    min_score = DecimalField("Lowest score", places=None, validators=[InputRequired()])
    max_score = DecimalField("Highest score", places=None, validators=[InputRequired()])
    is_higher_better = BooleanField("Higher scores are better")
    mcid = DecimalField(
        "MCID (points)",
        places=None,
        validators=[InputRequired(), NumberRange(min=0.01)],
        description="Minimal clinically important difference.",
    )
    mcid_citation = TextAreaField(
        "MCID source",
        validators=[DataRequired(), Length(max=2000)],
        filters=[clean_text],
        description="The published study the MCID comes from.",
    )
    is_active = BooleanField("Offered for new scores", default=True)

    def validate_max_score(self, field):
        if field.data is not None and self.min_score.data is not None and field.data <= self.min_score.data:
            raise ValidationError("The highest score must be above the lowest.")

    def validate_mcid(self, field):
        if (
            None not in (field.data, self.min_score.data, self.max_score.data)
            and field.data > self.max_score.data - self.min_score.data
        ):
            raise ValidationError("The MCID cannot exceed the instrument's range.")


class RangeForm(FlaskForm):
    """GET parameters: no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False

    start = DateField("From", validators=[Optional()])
    end = DateField("To", validators=[Optional()])

    def validate_end(self, field):
        if field.data and self.start.data and field.data < self.start.data:
            raise ValidationError("The end date must be on or after the start date.")
