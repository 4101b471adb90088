"""Encrypted Patient fields through the ORM and the database: round trips, binding, hygiene."""

import uuid
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, text, update

from portal.core.phi import DecryptionError, encrypted_models
from portal.core.phi.codecs import BYTES, DATE, DATETIME, INT, JSON_DICT, JSON_LIST, STR
from portal.extensions import db
from portal.patients.models import Patient, Sex
from tests.phi.conftest import reload_all

ADDRESS = {"line1": "4410 Willow Creek Rd", "line2": "Apt 2", "city": "Madison", "postal_code": "53703"}


def make_patient(**overrides) -> Patient:
    fields = dict(
        given_name="Margaret",
        family_name="Okonkwo",
        birth_date=date(1958, 3, 14),
        phone="(608) 555-0100",
        email="margaret.okonkwo@example.org",
        address=ADDRESS,
        insurance_payer="Badger State Care",
        insurance_member_id="M123456789",
        us_state="WI",
        sex=Sex.FEMALE,
    )
    fields.update(overrides)
    patient = Patient(**fields)
    db.session.add(patient)
    db.session.flush()
    return patient


@pytest.mark.parametrize(
    "codec, value",
    [
        (STR, "Zoë Ñandú 李"),
        (STR, ""),
        (BYTES, b"\x00\x80\xff"),
        (DATE, date(1958, 3, 14)),
        (DATETIME, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (INT, -42),
        (JSON_DICT, {"a": [1, "ü", None]}),
        (JSON_LIST, [1, {"b": 2}]),
    ],
)
def test_every_codec_round_trips(codec, value):
    assert codec.decode(codec.encode(value)) == value


def test_round_trip_every_field_type_through_the_database(phi_db):
    patient = make_patient()
    db.session.commit()
    (loaded,) = [p for p in reload_all(Patient) if p.id == patient.id]
    assert loaded.given_name == "Margaret" and loaded.family_name == "Okonkwo"
    assert loaded.birth_date == date(1958, 3, 14)
    assert loaded.phone == "(608) 555-0100" and loaded.email == "margaret.okonkwo@example.org"
    assert loaded.address == ADDRESS
    assert loaded.insurance_member_id == "M123456789"
    assert loaded.us_state == "WI" and loaded.sex is Sex.FEMALE


def test_nullable_fields_store_null_and_clear_their_index(phi_db):
    patient = make_patient(phone=None, email=None, address=None, insurance_member_id=None)
    db.session.commit()
    row = db.session.execute(
        text("SELECT phone_ct, phone_bidx, email_ct, address_ct FROM patients WHERE id = :id"),
        {"id": patient.id},
    ).one()
    assert tuple(row) == (None, None, None, None)
    patient.phone = "608 555 0101"
    assert patient.phone_bidx is not None
    patient.phone = None
    assert patient.phone_bidx is None


def test_public_id_assigned_before_first_encryption_and_immutable(phi_db):
    patient = Patient(family_name="Okonkwo")
    assert isinstance(patient.public_id, uuid.UUID)
    with pytest.raises(AttributeError, match="immutable"):
        patient.public_id = uuid.uuid4()


def test_in_place_edit_of_a_dict_is_not_silently_lost(phi_db):
    patient = make_patient()
    patient.address["city"] = "Verona"  # edits a copy: stored value unchanged
    assert patient.address["city"] == "Madison"
    patient.address = {**patient.address, "city": "Verona"}
    db.session.commit()
    assert reload_all(Patient)[-1].address["city"] == "Verona"


def test_type_errors_name_the_column_not_the_value(phi_db):
    with pytest.raises(TypeError, match="patients.birth_date expects date, not str") as caught:
        Patient(birth_date="1958-03-14")
    assert "1958" not in str(caught.value)
    with pytest.raises(ValueError, match="patients.family_name is required"):
        Patient(family_name=None)
    with pytest.raises(ValueError, match="unknown keys: street") as caught:
        Patient(address={"street": "4410 Willow Creek Rd"})
    assert "Willow" not in str(caught.value)


def test_repr_shows_no_phi(phi_db):
    patient = make_patient()
    assert repr(patient) == f"<Patient {patient.public_id}>"
    assert "Okonkwo" not in repr(Patient.__dict__) and "Okonkwo" not in repr(vars(patient).keys())


def _swap(target_id, column, source_sql_value):
    db.session.execute(
        update(Patient.__table__).where(Patient.__table__.c.id == target_id).values({column: source_sql_value})
    )
    db.session.commit()


def test_value_copied_to_another_row_fails_closed(phi_db):
    a, b = make_patient(), make_patient(family_name="Lindqvist")
    db.session.commit()
    _swap(b.id, "family_name_ct", a.family_name_ct)
    db.session.expire_all()
    loaded = db.session.get(Patient, b.id)
    with pytest.raises(DecryptionError) as caught:
        loaded.family_name
    message = str(caught.value)
    assert f"patients.family_name of row {b.public_id}" in message
    assert "Okonkwo" not in message and "Lindqvist" not in message


def test_value_copied_to_another_column_fails_closed(phi_db):
    a = make_patient()
    db.session.commit()
    _swap(a.id, "given_name_ct", a.family_name_ct)
    db.session.expire_all()
    with pytest.raises(DecryptionError, match="patients.given_name"):
        db.session.get(Patient, a.id).given_name


def test_unknown_key_id_in_database_is_a_clear_error(phi_db):
    a = make_patient()
    db.session.commit()
    forged = a.email_ct[:2] + (4242).to_bytes(4, "big") + a.email_ct[6:]
    _swap(a.id, "email_ct", forged)
    db.session.expire_all()
    with pytest.raises(DecryptionError, match="key id 4242 is not in this keyring"):
        db.session.get(Patient, a.id).email


def test_registry_discovers_patient_columns_from_the_mappers(phi_db):
    (model,) = [m for m in encrypted_models(db.Model.registry) if m.name == "patients"]
    assert [f.name for f in model.fields] == [
        "given_name",
        "family_name",
        "birth_date",
        "phone",
        "email",
        "address",
        "insurance_member_id",
        "insurance_payer",
        "us_state",
        "sex",
    ]
    assert [ix.name for ix in model.indexes] == ["name_dob_bidx", "phone_bidx", "email_bidx"]


def test_ciphertext_is_bytes_in_the_database(phi_db):
    a = make_patient()
    db.session.commit()
    raw = db.session.execute(select(Patient.__table__.c.family_name_ct).where(Patient.id == a.id)).scalar_one()
    assert isinstance(raw, bytes) and raw[:2] == b"\x01\x01" and b"Okonkwo" not in raw
