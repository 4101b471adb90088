"""Normalisers for blind indexes: two spellings a person would call equal must hash equal."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime

_NON_DIGITS = re.compile(r"\D")
_EXTENSION = re.compile(r"(?:ext\.?|x|#)\s*\d+\s*$", re.IGNORECASE)
# Typographic variants people paste from word processors: O’Brien, Smith‐Jones.
_PUNCTUATION = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
    }
)


def name(value: str) -> str:
    """NFKC, fold accents, casefold, unify apostrophes/dashes, collapse whitespace.

    Accent folding goes beyond NFKC on purpose: a referrer typing "Munoz" must find
    "Muñoz"; the date of birth in the combined index keeps the match precise.
    """
    if value.isascii():  # the common case: NFKC and accent folding change nothing
        return " ".join(value.lower().split())
    decomposed = unicodedata.normalize("NFKD", value)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = unicodedata.normalize("NFKC", bare).casefold().translate(_PUNCTUATION)
    return " ".join(folded.split())


def us_phone(value: str) -> str:
    """E.164 for North American numbers; other inputs reduce to '+digits' or bare digits."""
    text = _EXTENSION.sub("", unicodedata.normalize("NFKC", value).strip())
    digits = _NON_DIGITS.sub("", text)
    if text.startswith("+"):
        return "+" + digits if digits else ""
    if len(digits) == 10:
        return "+1" + digits
    if len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    if digits.startswith("011") and len(digits) > 3:  # US international dialling prefix
        return "+" + digits[3:]
    return digits


def email(value: str) -> str:
    """Trimmed and lowercased (whole address: providers treat the local part case-blind)."""
    return unicodedata.normalize("NFKC", value).strip().lower()


def iso_date(value: date | datetime | str) -> str:
    """ISO 8601 calendar date; strings are parsed so '1980-4-2' and '1980-04-02' agree."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            year, month, day = (int(p) for p in value.strip().split("-"))
            value = date(year, month, day)
        except ValueError:
            # The message of int()/date() would quote the input: never put PHI in an error.
            raise ValueError("not an ISO date (YYYY-MM-DD)") from None
    return value.isoformat()


def exact(value: object) -> str:
    """No folding beyond NFKC and trimming: for identifiers such as member ids."""
    return unicodedata.normalize("NFKC", str(value)).strip()
