"""The patient's language (Flask-Babel): English or Spanish, chosen by the patient and kept on the request.

Only the patient pages, the signed copy and the patient's wording are translated; staff pages stay
in English. The catalogues are ``portal/translations/<lang>/LC_MESSAGES/messages.po`` (compiled to
``.mo`` beside them; ``tests/econsent/test_translations.py`` keeps both complete and in step).
"""

from pathlib import Path

from flask import Flask, g
from flask_babel import Babel, refresh

from portal.econsent.models import Language

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
babel = Babel()


def patient_locale() -> str:
    """The locale of this request: the patient's language on patient pages, English elsewhere."""
    return g.get("patient_language", Language.ENGLISH.value)


def init_babel(app: Flask) -> None:
    babel.init_app(
        app,
        default_locale=Language.ENGLISH.value,
        default_timezone=app.config["PORTAL_TIMEZONE"],
        default_translation_directories=str(TRANSLATIONS),
        locale_selector=patient_locale,
    )


def use_language(language: Language) -> None:
    """Render the rest of this request in ``language``."""
    g.patient_language = language.value
    refresh()
