"""A run that touches PHI (write, read, search, fail, rotate) logs none of it, SQL echo included."""

import logging

import pytest
from sqlalchemy import select, update

from portal.core.phi import DecryptionError
from portal.extensions import db
from portal.patients.demo import seed_demo_patients
from portal.patients.models import Patient, find_patients_by_name_and_birth_date, find_patients_by_phone
from tests.phi.probes import leaks, probes_for

log = logging.getLogger("portal.tests.phi")


def test_phi_never_reaches_logs_or_sql_echo(committed_app, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    for name in ("portal", "sqlalchemy.engine", "sqlalchemy.pool"):
        caplog.set_level(logging.DEBUG, logger=name)
    runner = committed_app.test_cli_runner()
    with committed_app.app_context():
        assert db.engine.echo == "debug"
        patients = seed_demo_patients(12)
        db.session.commit()
        probes = probes_for(patients)
        db.session.expire_all()
        for patient in db.session.scalars(select(Patient)):
            log.debug("read patient %r", patient)
            assert patient.given_name and patient.address
            find_patients_by_name_and_birth_date(patient.family_name, patient.birth_date)
            find_patients_by_phone(patient.phone)
        victim = patients[0]
        db.session.execute(
            update(Patient.__table__).where(Patient.__table__.c.id == victim.id).values(email_ct=patients[1].email_ct)
        )
        db.session.commit()
        with pytest.raises(DecryptionError) as caught:
            db.session.get(Patient, victim.id).email
        log.exception("decryption failed", exc_info=caught.value)
        for args in (["add-key"], ["promote", "3"], ["rotate"], ["status"]):
            result = runner.invoke(args=["phi", *args])
            log.info("cli %s -> %s", args, result.output)
        db.session.remove()

    captured = capsys.readouterr()
    sql_lines = [r for r in caplog.records if r.name.startswith("sqlalchemy.engine")]
    assert len(sql_lines) > 50  # echo really was on, with result rows at DEBUG
    text_seen = (caplog.text + captured.out + captured.err).encode("utf-8")
    assert b"patients" in text_seen
    assert leaks(text_seen, probes) == []
