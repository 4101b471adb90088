"""The Patient model: encrypted PHI, blind indexes for matching, licensure state in clear."""

from __future__ import annotations

import enum
from datetime import date
from typing import Any

from sqlalchemy import CheckConstraint, Enum, String, select
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import PkMixin, TimestampMixin
from portal.core.phi import blind_index, blind_match, encrypted, normalize
from portal.extensions import db

ADDRESS_KEYS = frozenset({"line1", "line2", "city", "postal_code"})


class Sex(enum.StrEnum):
    """Administrative sex, kept in clear (see docs/security.md): not an identifier on its own."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        return "Not recorded" if self is Sex.UNKNOWN else self.value.capitalize()


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
    __table_args__ = (CheckConstraint("length(us_state) = 2", name="us_state_two_letters"),)

    given_name = encrypted(str)
    family_name = encrypted(str)
    birth_date = encrypted(date)
    phone = encrypted(str, nullable=True)
    email = encrypted(str, nullable=True)
    address = encrypted(dict, nullable=True, check=check_address)
    insurance_member_id = encrypted(str, nullable=True)

    # Payer name and licensure state identify nobody alone and are needed in SQL (reports,
    # the telehealth licensure check), so they stay in clear; so does administrative sex.
    insurance_payer: Mapped[str | None] = mapped_column(String(120))
    us_state: Mapped[str] = mapped_column(String(2))
    sex: Mapped[Sex] = mapped_column(
        Enum(Sex, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=Sex.UNKNOWN,
        server_default=Sex.UNKNOWN.value,
    )

    name_dob_bidx = blind_index(family_name=normalize.name, birth_date=normalize.iso_date)
    phone_bidx = blind_index(phone=normalize.us_phone)
    email_bidx = blind_index(email=normalize.email)

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
