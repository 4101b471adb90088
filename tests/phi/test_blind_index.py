"""Blind-index lookups find exactly the matching rows, across spellings people actually type."""

from datetime import date

import pytest
from sqlalchemy import select

from portal.core.phi import blind_match
from portal.core.phi.blind import INDEX_LEN
from portal.extensions import db
from portal.patients.models import (
    Patient,
    find_patients_by_email,
    find_patients_by_name_and_birth_date,
    find_patients_by_phone,
)

BIRTH = date(1989, 6, 23)


@pytest.fixture
def people(phi_db):
    rows = {
        "munoz": Patient(
            given_name="Rosalind",
            family_name="Muñoz",
            birth_date=BIRTH,
            us_state="WI",
            phone="(608) 555-0142",
            email="Rosalind.Munoz@Example.org",
        ),
        "munoz_twin": Patient(
            given_name="Rosalie", family_name="MUNOZ", birth_date=BIRTH, us_state="WI", phone="+1 608 555 0143"
        ),
        "munoz_other_dob": Patient(
            given_name="Ramon", family_name="Muñoz", birth_date=date(1989, 6, 24), us_state="WI", phone="608.555.0142"
        ),
        "callaghan": Patient(
            given_name="Siobhan",
            family_name="O’Callaghan",
            birth_date=date(1975, 10, 5),
            us_state="WI",
            email="siobhan@example.org",
        ),
        "de_la_cruz": Patient(given_name="Maria", family_name="De la Cruz", birth_date=date(1970, 1, 1), us_state="IL"),
    }
    db.session.add_all(rows.values())
    db.session.commit()
    return rows


def ids(patients):
    return sorted(p.id for p in patients)


@pytest.mark.parametrize("typed", ["Muñoz", "munoz", "  MUNOZ ", "Mun\u0303oz", "ＭＵＮＯＺ"])
def test_name_and_birth_date_lookup_normalises(people, typed):
    found = find_patients_by_name_and_birth_date(typed, BIRTH)
    assert ids(found) == ids([people["munoz"], people["munoz_twin"]])


def test_name_and_birth_date_lookup_is_exact_otherwise(people):
    assert find_patients_by_name_and_birth_date("Munoz", date(1989, 6, 25)) == []
    assert find_patients_by_name_and_birth_date("Muno", BIRTH) == []
    assert ids(find_patients_by_name_and_birth_date("o'callaghan", date(1975, 10, 5))) == [people["callaghan"].id]
    assert ids(find_patients_by_name_and_birth_date("de  la   CRUZ", date(1970, 1, 1))) == [people["de_la_cruz"].id]
    assert find_patients_by_name_and_birth_date("   ", BIRTH) == []


@pytest.mark.parametrize("typed", ["608-555-0142", "(608) 555 0142", "+16085550142", "1 608 555 0142", "6085550142 x7"])
def test_phone_lookup_accepts_formats(people, typed):
    assert ids(find_patients_by_phone(typed)) == ids([people["munoz"], people["munoz_other_dob"]])


def test_email_lookup_is_case_blind(people):
    assert ids(find_patients_by_email(" ROSALIND.munoz@example.ORG")) == [people["munoz"].id]
    assert find_patients_by_email("rosalind.munoz@example.com") == []


def test_index_follows_updates(people):
    patient = people["de_la_cruz"]
    patient.family_name = "Delacroix"
    db.session.commit()
    assert find_patients_by_name_and_birth_date("De la Cruz", date(1970, 1, 1)) == []
    assert ids(find_patients_by_name_and_birth_date("DELACROIX", date(1970, 1, 1))) == [patient.id]
    patient.birth_date = date(1970, 1, 2)
    db.session.commit()
    assert find_patients_by_name_and_birth_date("Delacroix", date(1970, 1, 1)) == []
    assert ids(find_patients_by_name_and_birth_date("Delacroix", date(1970, 1, 2))) == [patient.id]


def test_index_values_are_keyed_and_truncated(people):
    value = people["munoz"].name_dob_bidx
    assert len(value) == INDEX_LEN and value[:4] == (2).to_bytes(4, "big")
    assert people["munoz"].phone_bidx != people["munoz"].email_bidx


def test_blind_match_refuses_non_index_columns(phi_db):
    with pytest.raises(TypeError, match="not a blind index"):
        blind_match(Patient.us_state, "WI")
    with pytest.raises(TypeError, match="takes 2 values"):
        select(Patient).where(blind_match(Patient.name_dob_bidx, "Munoz"))
