"""Story forms (staff) and the partners' condition filter."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from portal.core.forms import clean_text, one_line
from portal.stories.models import Condition

BODY_LIMIT = 20000


class StoryForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)], filters=[one_line])
    condition = SelectField("Condition", choices=[SelectChoice(c.value, c.label) for c in Condition])
    highlight = StringField(
        "Outcome highlight",
        validators=[DataRequired(), Length(max=200)],
        filters=[one_line],
        description="For example: ODI 48 → 12 in 8 weeks.",
    )
    body = TextAreaField(
        "Story",
        validators=[DataRequired(), Length(max=BODY_LIMIT)],
        filters=[clean_text],
        description="Markdown: *emphasis*, **bold**, lists, links. No names, dates, or places "
        "that could identify the patient.",
    )


class PublishForm(FlaskForm):
    acknowledge = BooleanField("I have checked the warnings: publish anyway (the patient agreed to these details)")


class ConditionFilter(FlaskForm):
    class Meta:
        csrf = False

    condition = SelectField(
        "Condition",
        choices=[SelectChoice("", "All conditions")] + [SelectChoice(c.value, c.label) for c in Condition],
        validate_choice=False,
    )
