"""The Patient model: every field of the record encrypted, blind indexes for matching."""

from __future__ import annotations

import enum
from datetime import date
from typing import Any

from sqlalchemy import select

from portal.core.db import PkMixin, TimestampMixin
from portal.core.phi import blind_index, blind_match, encrypted, normalize
from portal.core.phi.codecs import Codec
from portal.extensions import db

ADDRESS_KEYS = frozenset({"line1", "line2", "city", "postal_code"})


class Sex(enum.StrEnum):
    """Administrative sex (encrypted with the rest of the record)."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        return "Not recorded" if self is Sex.UNKNOWN else self.value.capitalize()


# Administrative sex, encrypted as its code and read back as the enum.
SEX = Codec("sex", (Sex,), lambda value: Sex(value).value.encode(), lambda blob: Sex(blob.decode()))


def check_us_state(value: str) -> None:
    if len(value) != 2 or not value.isascii() or not value.isupper():
        raise ValueError("us_state must be a two-letter code")


def check_payer(value: str) -> None:
    if len(value) > 120:
        raise ValueError("insurance_payer is longer than 120 characters")


def check_address(value: dict[str, Any]) -> None:
    """Only the agreed keys, string values; the error names keys, never contents."""
    unknown = set(value) - ADDRESS_KEYS
    if unknown:
        raise ValueError(f"address has unknown keys: {', '.join(sorted(unknown))}")
    if any(v is not None and not isinstance(v, str) for v in value.values()):
        raise TypeError("address values must be strings")


class Patient(PkMixin, TimestampMixin, db.Model):
    """A person referred to the practice; the row itself holds no readable PHI."""

    __tablename__ = "patients"

    given_name = encrypted(str)
    family_name = encrypted(str)
    birth_date = encrypted(date)
    phone = encrypted(str, nullable=True)
    email = encrypted(str, nullable=True)
    address = encrypted(dict, nullable=True, check=check_address)
    insurance_member_id = encrypted(str, nullable=True)
    # Part of the patient's record like the rest, though nothing queries them in SQL: the
    # telehealth licensure check reads one patient's state, after decryption.
    insurance_payer = encrypted(str, nullable=True, check=check_payer)
    us_state = encrypted(str, check=check_us_state)
    sex = encrypted(SEX)

    name_dob_bidx = blind_index(family_name=normalize.name, birth_date=normalize.iso_date)
    phone_bidx = blind_index(phone=normalize.us_phone)
    email_bidx = blind_index(email=normalize.email)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("sex", Sex.UNKNOWN)  # administrative sex is "not recorded" until given
        super().__init__(**kwargs)

    def __repr__(self) -> str:
        return f"<Patient {self.public_id}>"


def find_patients_by_name_and_birth_date(family_name: str, birth_date: date) -> list[Patient]:
    """Exact match on normalised last name + date of birth, through the blind index."""
    query = select(Patient).where(blind_match(Patient.name_dob_bidx, family_name, birth_date)).order_by(Patient.id)
    return list(db.session.scalars(query))


def find_patients_by_phone(phone: str) -> list[Patient]:
    query = select(Patient).where(blind_match(Patient.phone_bidx, phone)).order_by(Patient.id)
    return list(db.session.scalars(query))


def find_patients_by_email(email: str) -> list[Patient]:
    query = select(Patient).where(blind_match(Patient.email_bidx, email)).order_by(Patient.id)
    return list(db.session.scalars(query))
