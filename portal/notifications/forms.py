"""The notification preferences form: one choice per category the user's role receives."""

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField

from portal.notifications.catalog import Category
from portal.notifications.models import DeliveryMode


class PreferencesForm(FlaskForm):
    """Fields are added per category by preferences_form()."""


def preferences_form(categories: list[Category], current: dict[Category, DeliveryMode]) -> PreferencesForm:
    class Form(PreferencesForm):
        pass

    for category in categories:
        setattr(
            Form,
            category.value,
            SelectField(
                category.label,
                description=category.description,
                default=current[category].value,
                choices=[SelectChoice(m.value, m.label) for m in DeliveryMode],
            ),
        )
    return Form()


def chosen_modes(form: PreferencesForm, categories: list[Category]) -> dict[Category, DeliveryMode]:
    return {c: DeliveryMode(form[c.value].data) for c in categories}
