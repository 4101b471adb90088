"""The notification preferences form: one choice per category the user's role receives."""

from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField

from portal.notifications.catalog import Category
from portal.notifications.models import DeliveryMode


class PreferencesForm(FlaskForm):
    """Fields are added per category by preferences_form()."""


def _mode_label(category: Category, mode: DeliveryMode) -> str:
    """The monthly summary is itself a digest: "Immediately" would read as if it came at once (issue 15)."""
    if category is Category.DIGESTS and mode is DeliveryMode.IMMEDIATELY:
        return "On its own, as soon as it is ready"
    return mode.label


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
                choices=[SelectChoice(m.value, _mode_label(category, m)) for m in DeliveryMode],
            ),
        )
    return Form()


def chosen_modes(form: PreferencesForm, categories: list[Category]) -> dict[Category, DeliveryMode]:
    return {c: DeliveryMode(form[c.value].data) for c in categories}
