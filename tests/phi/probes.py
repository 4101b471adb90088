"""Every encoding in which a demo patient's PHI could leak into bytes: the raw-data probes."""
import base64
import unicodedata
from datetime import date

from portal.patients.models import Patient

MIN_PROBE = 5  # shorter byte strings turn up by chance in kilobytes of ciphertext


def _text_forms(value: str) -> set[bytes]:
    forms: set[bytes] = set()
    for variant in {value, value.lower(), value.upper(), value.casefold(),
                    unicodedata.normalize("NFD", value), unicodedata.normalize("NFKD", value)}:
        raw = variant.encode("utf-8")
        forms |= {raw, variant.encode("utf-16-le"), variant.encode("utf-16-be"), raw.hex().encode()}
        for shift in range(3):  # base64 of the value inside a larger blob, at each alignment
            encoded = base64.b64encode(b"\0" * shift + raw + b"\0\0\0")
            middle = encoded[(shift * 4 + 2) // 3 + 1: -5]
            if len(middle) >= 8:
                forms.add(middle)
    return {f for f in forms if len(f) >= MIN_PROBE}


def _date_forms(value: date) -> set[bytes]:
    texts = {value.isoformat(), value.strftime("%Y%m%d"), value.strftime("%m/%d/%Y"),
             f"{value.month}/{value.day}/{value.year}", value.strftime("%d.%m.%Y")}
    return {t.encode() for t in texts} | {value.toordinal().to_bytes(4, "big")}


def _phone_forms(value: str) -> set[bytes]:
    digits = "".join(c for c in value if c.isdigit())
    return _text_forms(value) | {digits.encode(), ("+1" + digits).encode(), digits[-7:].encode()}


def probes_for(patients: list[Patient]) -> dict[bytes, str]:
    """probe bytes -> a label saying what it is (for assertion messages)."""
    found: dict[bytes, str] = {}
    for p in patients:
        for label, value in (("given name", p.given_name), ("family name", p.family_name),
                             ("e-mail", p.email), ("member id", p.insurance_member_id),
                             ("address", (p.address or {}).get("line1"))):
            if value:
                found.update({form: label for form in _text_forms(value)})
        found.update({form: "phone" for form in _phone_forms(p.phone)})
        found.update({form: "birth date" for form in _date_forms(p.birth_date)})
    return found


def leaks(haystack: bytes, probes: dict[bytes, str]) -> list[str]:
    return sorted({f"{label} ({form[:3]!r}...)" for form, label in probes.items() if form in haystack})
