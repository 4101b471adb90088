"""After seeding demo patients, the raw database holds none of their PHI, in any encoding."""

import shutil
import subprocess

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import make_url

from portal.extensions import db
from portal.patients.demo import seed_demo_patients
from tests.phi.conftest import sqlite_path
from tests.phi.probes import leaks, probes_for, unhex_bytea


@pytest.fixture(scope="module")
def seeded(committed_app):
    with committed_app.app_context():
        patients = seed_demo_patients(60)
        db.session.commit()
        probes = probes_for(patients)
        db.session.remove()
    assert len(probes) > 60 * 10
    return probes


def test_sqlite_file_bytes_hold_no_phi(committed_app, seeded):
    path = sqlite_path(committed_app)
    if path is None:
        pytest.skip("SQLite only: PostgreSQL is checked through SQL below")
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))  # db, -wal, -shm
    assert b"patients" in raw and len(raw) > 60 * 500  # the data really is in these files
    assert leaks(raw, seeded) == []


def test_pg_dump_holds_no_phi(committed_app, seeded):
    if sqlite_path(committed_app) is not None or not shutil.which("pg_dump"):
        pytest.skip("PostgreSQL with pg_dump on PATH only")
    url = make_url(committed_app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
    dump = subprocess.run(
        ["pg_dump", "--data-only", url.render_as_string(hide_password=False)],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    assert b"COPY public.patients" in dump and len(dump) > 60 * 500
    assert leaks(unhex_bytea(dump), seeded) == []


def test_every_column_of_every_table_holds_no_phi(committed_app, seeded):
    with committed_app.app_context():
        chunks = []
        for table in inspect(db.engine).get_table_names():
            for row in db.session.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        chunks.append(bytes(value))
                    elif value is not None:
                        chunks.append(str(value).encode("utf-8"))
        assert db.session.scalar(text("SELECT count(*) FROM patients")) == 60
        db.session.remove()
    assert leaks(b"\x1e".join(chunks), seeded) == []


def test_probes_would_catch_a_leak(committed_app, seeded):
    """The probe set is not vacuous: plaintext written next to the ciphertext is found."""
    with committed_app.app_context():
        from portal.patients.models import Patient

        patient = db.session.scalars(select(Patient).limit(1)).one()
        leaked = f"{patient.family_name} {patient.birth_date:%m/%d/%Y} {patient.email}".encode()
        db.session.remove()
    assert {hit.split(" (")[0] for hit in leaks(leaked, seeded)} >= {"family name", "birth date", "e-mail"}


def test_probes_read_a_dump_as_stored_bytes(committed_app, seeded):
    """Plaintext in a bytea column is found through the dump's hex; chance digits in hex are not."""
    with committed_app.app_context():
        from portal.patients.models import Patient

        patient = db.session.scalars(select(Patient).limit(1)).one()
        name, phone = patient.family_name, patient.phone
        db.session.remove()
    last7 = "".join(c for c in phone if c.isdigit())[-7:]
    row = b"42\t\\\\x" + name.encode().hex().encode() + b"\t2026-11-26\n"
    assert unhex_bytea(row) == b"42\t" + name.encode() + b"\t2026-11-26\n"
    assert leaks(unhex_bytea(row), seeded) == ["family name (" + repr(name.encode()[:3]) + "...)"]
    assert leaks(b"\\\\x0af3" + last7.encode() + b"9c", seeded) == []  # seven digits inside ciphertext hex
    assert leaks(b'{"tel": "' + last7.encode() + b'"}', seeded) == ["phone (" + repr(last7.encode()[:3]) + "...)"]
