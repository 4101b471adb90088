"""Before publishing: does the story's text contain the patient's identifiers?

Compares against the decrypted fields in memory only. The result names the *kind* of
identifier found, never the value, so it can be shown, flashed or audited safely.
"""

import re
import unicodedata
from datetime import date

from portal.patients.models import Patient

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _fold(text: str) -> str:
    """Case, accents, typographic apostrophes and spacing do not hide a match."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(text.split())


def _has_word(haystack: str, needle: str) -> bool:
    needle = _fold(needle)
    if len(needle) < 2:
        return False
    return re.search(r"(?<![\w])" + re.escape(needle) + r"(?![\w])", haystack) is not None


def _date_forms(day: date) -> list[str]:
    month = MONTHS[day.month - 1]
    return [
        day.isoformat(),
        f"{day.month}/{day.day}/{day.year}",
        f"{day.month:02d}/{day.day:02d}/{day.year}",
        f"{day.month}-{day.day}-{day.year}",
        f"{day.month:02d}-{day.day:02d}-{day.year}",
        f"{month} {day.day}, {day.year}",
        f"{month} {day.day} {day.year}",
        f"{month[:3]} {day.day}, {day.year}",
        f"{month[:3]} {day.day} {day.year}",
        f"{month[:3]}. {day.day}, {day.year}",
        f"{day.day} {month} {day.year}",
        f"{day.day} {month[:3]} {day.year}",
        f"{day.month}/{day.day}/{day.year % 100:02d}",
    ]


def _digit_runs(text: str) -> list[str]:
    """Digit sequences as a phone number might be written: (608) 555-0142, 608.555.0142, +1 608 555 0142."""
    return [re.sub(r"\D", "", m) for m in re.findall(r"\+?\d[\d\s().\-]{5,}\d", text)]


def findings(patient: Patient, *texts: str) -> list[str]:
    """The kinds of the patient's identifiers that appear in the texts ([] when none do)."""
    haystack = _fold(" \n ".join(t or "" for t in texts))
    found = []
    if patient.given_name and _has_word(haystack, patient.given_name):
        found.append("the patient's first name")
    if patient.family_name and (
        _has_word(haystack, patient.family_name)
        or any(_has_word(haystack, part) for part in re.split(r"[\s\-]+", patient.family_name) if len(part) > 2)
    ):
        found.append("the patient's last name")
    if patient.birth_date and any(_fold(form) in haystack for form in _date_forms(patient.birth_date)):
        found.append("the patient's date of birth")
    digits = re.sub(r"\D", "", patient.phone or "")
    if len(digits) >= 7 and any(run.endswith(digits[-7:]) or digits[-7:] in run for run in _digit_runs(haystack)):
        found.append("the patient's phone number")
    if patient.email and _fold(patient.email) in haystack:
        found.append("the patient's e-mail address")
    line1 = (patient.address or {}).get("line1") if patient.address else None
    if line1:
        words = _fold(line1).split()
        number_and_street = " ".join(words[:2]) if len(words) >= 2 else ""
        street = " ".join(w for w in words if not w.isdigit())
        if (
            _fold(line1) in haystack
            or (number_and_street and number_and_street in haystack)
            or (len(street) > 4 and _has_word(haystack, street))
        ):
            found.append("the patient's street address")
    return found
