"""Plausible, fictional demo patients: a fixed cast plus a deterministic generator."""

from __future__ import annotations

import random
from datetime import date, timedelta

from portal.extensions import db
from portal.patients.models import Patient, Sex

# (given, family, birth date, sex, state) — invented people; phones use the fictional 555-01xx range.
FIXED = [
    ("Margaret", "Okonkwo", date(1958, 3, 14), Sex.FEMALE, "WI"),
    ("Thomas", "Lindqvist", date(1971, 11, 2), Sex.MALE, "WI"),
    ("Rosalind", "Muñoz", date(1989, 6, 23), Sex.FEMALE, "WI"),
    ("Dmitri", "Kowalczyk", date(1964, 1, 30), Sex.MALE, "IL"),
    ("Priyanka", "Raghavan", date(1993, 9, 8), Sex.FEMALE, "WI"),
    ("Harold", "Brennan", date(1947, 5, 19), Sex.MALE, "WI"),
    ("Eleanor", "Vasquez", date(1979, 12, 1), Sex.FEMALE, "MN"),
    ("Marcus", "Thibodeaux", date(2001, 7, 11), Sex.MALE, "WI"),
    ("Yolanda", "Achterberg", date(1968, 2, 27), Sex.FEMALE, "WI"),
    ("Benedikt", "Schröder", date(1985, 4, 16), Sex.MALE, "IL"),
    ("Siobhan", "O’Callaghan", date(1975, 10, 5), Sex.FEMALE, "WI"),
    ("Kwame", "Asante-Boateng", date(1998, 8, 21), Sex.MALE, "WI"),
]
GIVEN = [
    "Abigail",
    "Bernard",
    "Camille",
    "Desmond",
    "Evelyn",
    "Frederick",
    "Gabriela",
    "Horace",
    "Imogen",
    "Jasper",
    "Katarina",
    "Leopold",
    "Marisol",
    "Nathaniel",
    "Ophelia",
    "Percival",
]
FAMILY = [
    "Hargreaves",
    "Castellano",
    "Nakamura",
    "Petrosyan",
    "Fairweather",
    "Delacroix",
    "Lindgren",
    "Abernathy",
    "Oyelaran",
    "Kristiansen",
    "Montgomery",
    "Szymanski",
]
STREETS = ["Willow Creek Rd", "Monona Dr", "Regent St", "Old Sauk Rd", "Mineral Point Rd", "Atwood Ave"]
CITIES = [("Madison", "53703"), ("Middleton", "53562"), ("Verona", "53593"), ("Sun Prairie", "53590")]
AREA_CODES = ["608", "414", "262", "920", "715"]
PAYERS = ["Dairyland Mutual Health", "Badger State Care", "Lakeshore Employer Plan", None]


def demo_patient(index: int) -> Patient:
    """The index-th demo patient; the same index always yields the same person."""
    rng = random.Random(20_261_126 + index)
    if index < len(FIXED):
        given, family, birth, sex, state = FIXED[index]
    else:
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 70))
        sex, state = rng.choice([Sex.FEMALE, Sex.MALE]), rng.choice(["WI", "WI", "WI", "IL", "MN"])
    city, postal = rng.choice(CITIES)
    ascii_family = family.replace("ñ", "n").replace("ö", "o").replace("’", "").replace("-", "")
    payer = rng.choice(PAYERS)
    return Patient(
        given_name=given,
        family_name=family,
        birth_date=birth,
        sex=sex,
        phone=f"({AREA_CODES[index // 100 % len(AREA_CODES)]}) 555-01{index % 100:02d}",
        email=f"{given.lower()}.{ascii_family.lower()}{index}@example.org",
        address={
            "line1": f"{rng.randrange(100, 9999)} {rng.choice(STREETS)}",
            "line2": None,
            "city": city,
            "postal_code": postal,
        },
        insurance_payer=payer,
        insurance_member_id=f"M{rng.randrange(10**8, 10**9)}" if payer else None,
        us_state=state,
    )


def seed_demo_patients(n: int = 40) -> list[Patient]:
    """Add ``n`` demo patients to the session and flush; the caller commits."""
    patients = [demo_patient(i) for i in range(n)]
    db.session.add_all(patients)
    db.session.flush()
    return patients
