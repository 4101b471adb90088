"""The patient's place in the flow, kept in the signed session cookie: which link, and since when confirmed.

The cookie names one link (its public id, never the token) and nothing about the patient. Every
patient page reads its request through that link and nothing else: there is no request id in any
URL, so one link can never open another request. Identity, once confirmed, counts for
``PATIENT_SESSION_MINUTES`` (default 20) and only for that link's request.
"""

import time
import uuid

from flask import current_app, session

from portal.econsent.models import Language, PatientLink

KEY = "patient_consent"
DEFAULT_MINUTES = 20


def start(link: PatientLink, *, kiosk: bool = False) -> None:
    """This browser now works on ``link`` alone (whatever it held before is gone)."""
    session.clear()
    session[KEY] = {"link": str(link.public_id), "kiosk": kiosk}


def link_id() -> uuid.UUID | None:
    data = session.get(KEY)
    if not isinstance(data, dict):
        return None
    try:
        return uuid.UUID(str(data.get("link")))
    except ValueError:
        return None


def confirm_identity() -> None:
    data = dict(session.get(KEY) or {})
    data["verified_at"] = int(time.time())
    session[KEY] = data


def is_confirmed() -> bool:
    data = session.get(KEY)
    if not isinstance(data, dict):
        return False
    verified = data.get("verified_at")
    minutes = int(current_app.config.get("PATIENT_SESSION_MINUTES", DEFAULT_MINUTES))
    return isinstance(verified, int) and 0 <= time.time() - verified < minutes * 60


def language() -> Language | None:
    """The language the patient chose in this browser, if any."""
    data = session.get(KEY)
    try:
        return Language(data.get("language")) if isinstance(data, dict) and data.get("language") else None
    except ValueError:
        return None


def choose_language(language: Language) -> None:
    data = dict(session.get(KEY) or {})
    data["language"] = language.value
    session[KEY] = data


def is_kiosk() -> bool:
    data = session.get(KEY)
    return isinstance(data, dict) and bool(data.get("kiosk"))


def end() -> None:
    """Forget the patient's link in this browser (a staff session, if any, is not the patient's to end)."""
    session.pop(KEY, None)
