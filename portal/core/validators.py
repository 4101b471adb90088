"""Validators shared by forms and (later) the FHIR API."""

import re
import uuid

from wtforms.validators import ValidationError

US_STATES = [
    "AL",
    "AK",
    "AZ",
    "AR",
    "CA",
    "CO",
    "CT",
    "DE",
    "DC",
    "FL",
    "GA",
    "HI",
    "ID",
    "IL",
    "IN",
    "IA",
    "KS",
    "KY",
    "LA",
    "ME",
    "MD",
    "MA",
    "MI",
    "MN",
    "MS",
    "MO",
    "MT",
    "NE",
    "NV",
    "NH",
    "NJ",
    "NM",
    "NY",
    "NC",
    "ND",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VT",
    "VA",
    "WA",
    "WV",
    "WI",
    "WY",
    "PR",
    "VI",
    "GU",
    "AS",
    "MP",
]


def npi_is_valid(npi: str) -> bool:
    """CMS NPI check digit: Luhn over the 80840 prefix plus the first nine digits."""
    if not re.fullmatch(r"\d{10}", npi or ""):
        return False
    digits = [int(d) for d in "80840" + npi[:9]]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return (10 - total % 10) % 10 == int(npi[9])


def validate_npi(form, field) -> None:
    if field.data and not npi_is_valid(field.data.strip()):
        raise ValidationError("Enter a valid 10-digit NPI (the last digit is a check digit).")


def strip_filter(value):
    return value.strip() if isinstance(value, str) else value


def parse_uuid(value: str | None) -> uuid.UUID | None:
    """A public id from a form field or query argument; None when it is not one (never an error)."""
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None
