"""ICD-10-CM codes: format validation and the shipped musculoskeletal suggestions."""

import csv
import re
from functools import cache
from pathlib import Path

# Letter (not U), digit, alphanumeric; then optionally a dot and 1-4 more characters.
ICD10_CM = re.compile(r"^[A-TV-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?$")
MAX_CODES = 12


@cache
def suggestions() -> tuple[tuple[str, str], ...]:
    with (Path(__file__).parent / "data" / "icd10_msk.csv").open(encoding="utf-8") as fh:
        return tuple((row["code"], row["description"]) for row in csv.DictReader(fh))


def parse_codes(text: str) -> tuple[list[str], list[str]]:
    """Split "M54.50, m17.11" into normalised codes; returns (codes, invalid entries)."""
    codes, invalid = [], []
    for raw in re.split(r"[,;\s]+", text or ""):
        if not raw:
            continue
        code = raw.strip().upper()
        if ICD10_CM.match(code):
            if code not in codes:
                codes.append(code)
        else:
            invalid.append(raw[:12])
    return codes, invalid
