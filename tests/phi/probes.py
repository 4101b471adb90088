"""Every encoding in which a demo patient's PHI could leak into bytes: the raw-data probes.

A probe must not match by chance, or the tests that use it flake. Two rules keep it so:

* no probe is shorter than ``MIN_PROBE`` bytes (a four-byte date ordinal turned up in 5 of
  29,220 tries in a 1 MB SQLite file: a 1 % flake for 60 birth dates, so it is not a probe);
* a short probe written only in hex digits (the last seven digits of a phone, ``YYYYMMDD``)
  counts only where it stands alone, not inside a longer run of hex digits: a pg_dump shows
  60 kB of ciphertext as hex, where ``55501xx`` turns up about once in 70 runs.
  A real leak sits between delimiters (quotes, commas, spaces), so this loses none.
"""

import base64
import re
import unicodedata
from datetime import date

from portal.patients.models import Patient

MIN_PROBE = 5  # shorter byte strings turn up by chance in kilobytes of ciphertext


def _text_forms(value: str) -> set[bytes]:
    forms: set[bytes] = set()
    for variant in {
        value,
        value.lower(),
        value.upper(),
        value.casefold(),
        unicodedata.normalize("NFD", value),
        unicodedata.normalize("NFKD", value),
    }:
        raw = variant.encode("utf-8")
        forms |= {raw, variant.encode("utf-16-le"), variant.encode("utf-16-be"), raw.hex().encode()}
        for shift in range(3):  # base64 of the value inside a larger blob, at each alignment
            encoded = base64.b64encode(b"\0" * shift + raw + b"\0\0\0")
            middle = encoded[(shift * 4 + 2) // 3 + 1 : -5]
            if len(middle) >= 8:
                forms.add(middle)
    return {f for f in forms if len(f) >= MIN_PROBE}


def _date_forms(value: date) -> set[bytes]:
    texts = {
        value.isoformat(),
        value.strftime("%Y%m%d"),
        value.strftime("%m/%d/%Y"),
        f"{value.month}/{value.day}/{value.year}",
        value.strftime("%d.%m.%Y"),
    }
    return {t.encode() for t in texts}


def _phone_forms(value: str) -> set[bytes]:
    digits = "".join(c for c in value if c.isdigit())
    return _text_forms(value) | {digits.encode(), ("+1" + digits).encode(), digits[-7:].encode()}


def probes_for(patients: list[Patient]) -> dict[bytes, str]:
    """probe bytes -> a label saying what it is (for assertion messages)."""
    found: dict[bytes, str] = {}
    for p in patients:
        for label, value in (
            ("given name", p.given_name),
            ("family name", p.family_name),
            ("e-mail", p.email),
            ("member id", p.insurance_member_id),
            ("address", (p.address or {}).get("line1")),
        ):
            if value:
                found.update(dict.fromkeys(_text_forms(value), label))
        found.update(dict.fromkeys(_phone_forms(p.phone), "phone"))
        found.update(dict.fromkeys(_date_forms(p.birth_date), "birth date"))
    return found


_HEX = re.compile(rb"[0-9a-fA-F]+")
_ALONE_BELOW = 12  # hex-only probes shorter than this must stand alone (see the module notes)


def _found(form: bytes, haystack: bytes) -> bool:
    if len(form) >= _ALONE_BELOW or not _HEX.fullmatch(form):
        return form in haystack
    return re.search(rb"(?<![0-9a-fA-F])" + re.escape(form) + rb"(?![0-9a-fA-F])", haystack) is not None


def leaks(haystack: bytes, probes: dict[bytes, str]) -> list[str]:
    return sorted({f"{label} ({form[:3]!r}...)" for form, label in probes.items() if _found(form, haystack)})


_BYTEA = re.compile(rb"\\\\x([0-9a-f]*)")


def unhex_bytea(dump: bytes) -> bytes:
    """A pg_dump with every bytea value (written ``\\\\x<hex>`` in COPY text) turned back into its bytes.

    Stored bytes are searched as bytes, as in the SQLite file; searching their hex spelling
    would find seven-digit probes by chance and would miss nothing the bytes do not show.
    """
    return _BYTEA.sub(lambda m: bytes.fromhex(m.group(1).decode()), dump)
