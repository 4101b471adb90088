"""Rotation: interrupted at a random batch, rerun completes; nothing lost, status all on the new key."""

import random

import pytest
from sqlalchemy import select, update

from portal.core.phi.keyring import BLIND, DATA
from portal.core.phi.registry import present_models
from portal.core.phi.rotation import RotationResult, column_status, count_stale, rotate_model
from portal.extensions import db
from portal.patients.models import Patient, find_patients_by_name_and_birth_date
from tests.phi.conftest import phi_state, reload_all

FIELDS = ("given_name", "family_name", "birth_date", "phone", "email", "address", "insurance_member_id")


class SimulatedCrash(Exception):
    """Stands in for a kill -9 in the middle of a batch."""


def snapshot(patients):
    return {p.id: tuple(getattr(p, f) for f in FIELDS) for p in patients}


def new_keys(app):
    """Add and promote a data key and a blind-index key, as an operator would."""
    state = phi_state(app)
    keyring, data_key = state.keyring.with_new_key(DATA)
    keyring, blind_key = keyring.promoted(data_key.id).with_new_key(BLIND)
    keyring = keyring.promoted(blind_key.id)
    state.replace(keyring)
    return keyring, data_key.id, blind_key.id


def models():
    return present_models(db.session.connection(), db.Model.registry)[0]


def rotate_all(keyring, batch_size, on_batch=None) -> RotationResult:
    result = RotationResult()
    for model in models():
        rotate_model(db.session, model, keyring, batch_size=batch_size, on_batch=on_batch, result=result)
    return result


def patient_status():
    return {s.column: s.counts for s in column_status(db.session, models()) if s.table == "patients"}


def test_interrupted_rotation_resumes_and_completes(app, demo_patients):
    before = snapshot(demo_patients)
    updated_at = dict(db.session.execute(select(Patient.id, Patient.updated_at)).all())
    keyring, data_id, blind_id = new_keys(app)
    batches = -(-len(demo_patients) // 7)
    crash_at = random.randint(1, batches)

    def crash(table, batch_no):
        if batch_no == crash_at:
            raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        rotate_all(keyring, batch_size=7, on_batch=crash)

    # Mid-rotation: values sit on both keys, and every one of them still decrypts.
    done = (crash_at - 1) * 7
    expected = {k: v for k, v in {1: len(before) - done, data_id: done}.items() if v}
    assert patient_status()["family_name_ct"] == expected, f"crashed in batch {crash_at}"
    assert snapshot(reload_all(Patient)) == before
    assert count_stale(db.session, models(), keyring) == len(before) - done

    result = rotate_all(keyring, batch_size=7)
    assert result.rows == len(before) - done and not result.failures and not result.conflicts

    status = patient_status()
    for field in FIELDS:
        assert set(status[field + "_ct"]) <= {data_id}, field
    assert status["family_name_ct"] == {data_id: len(before)}
    for index in ("name_dob_bidx", "phone_bidx", "email_bidx"):
        assert set(status[index]) == {blind_id}
    after = reload_all(Patient)
    assert snapshot(after) == before
    assert dict(db.session.execute(select(Patient.id, Patient.updated_at)).all()) == updated_at
    for patient in after[:5]:  # indexes were recomputed under the new blind key
        assert patient in find_patients_by_name_and_birth_date(patient.family_name, patient.birth_date)
    assert rotate_all(keyring, batch_size=7).rows == 0  # nothing left: a rerun is a no-op


def test_lookup_works_mid_blind_key_change(app, demo_patients):
    target = demo_patients[3]
    name, birth = target.family_name, target.birth_date
    new_keys(app)  # rows still carry indexes of the old blind key: lookups check both keys
    assert [p.id for p in find_patients_by_name_and_birth_date(name, birth)] == [target.id]


def test_undecryptable_row_is_reported_and_left_alone(app, demo_patients):
    victim, donor = demo_patients[0], demo_patients[1]
    db.session.execute(
        update(Patient.__table__).where(Patient.__table__.c.id == victim.id).values(family_name_ct=donor.family_name_ct)
    )
    db.session.commit()
    keyring, data_id, _ = new_keys(app)
    result = rotate_all(keyring, batch_size=10)
    assert result.failures == [
        f"patients.family_name row {victim.public_id}: "
        "authentication failed (value altered, or copied from another row or column)"
    ]
    assert patient_status()["family_name_ct"] == {1: 1, data_id: len(demo_patients) - 1}
