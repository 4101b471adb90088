"""`flask portal backup` then `flask portal restore --verify` into an empty database: the same rows,
documents and keyring come back, readable, with an intact audit chain; a damaged backup, a database
that is not empty or the wrong KEK are refused before anything is written. On both databases."""

import io
import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal import create_app
from portal.extensions import db
from tests.conftest import TEST_KEK, fresh_database, migrated_app
from tests.conftest import test_config as config_for
from tests.factories import PDF_BYTES


@pytest.fixture(autouse=True, scope="module")
def _postgresql_client_tools():
    """On PostgreSQL a backup is pg_dump and a restore pg_restore (Debian: postgresql-client, which
    scripts/test.sh installs). Without them the tests are skipped, loudly; in CI they fail."""
    if not (os.environ.get("TEST_DATABASE_URL") or "").startswith(("postgres://", "postgresql")):
        return
    absent = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
    if absent:
        message = f"BACKUPS ON POSTGRESQL NOT TESTED: no {' or '.join(absent)} (apt-get install postgresql-client)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _source(tmp: Path):
    """A committed database with the demo data, two attachments, a signed consent form, a sealed
    audit chain, and one orphaned document (no row: it must not be backed up)."""
    from portal.audit import chain
    from portal.audit.services import AuditAction, record
    from portal.consent.models import Consent
    from portal.core.phi import documents
    from portal.demo import seed_demo_data
    from portal.referrals.models import Referral
    from tests import factories

    url = fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp, "backup_source")
    app = migrated_app(url, tmp / "source-instance")
    with app.app_context(), app.test_request_context():
        seed_demo_data()
        referrals = db.session.scalars(select(Referral).order_by(Referral.id).limit(2)).all()
        for n, referral in enumerate(referrals):
            factories.make_attachment(referral, content=PDF_BYTES + bytes([n]) * 100, filename=f"scan-{n}.pdf")
        consent = db.session.scalars(select(Consent).order_by(Consent.id)).first()
        consent.document_id = uuid.uuid4()
        documents().save(consent.document_id, consent.patient.public_id, io.BytesIO(PDF_BYTES))
        documents().save(uuid.uuid4(), uuid.uuid4(), io.BytesIO(PDF_BYTES))  # an orphan
        for referral in referrals:
            record(AuditAction.REFERRAL_NOTE_ADDED, obj=referral, patient_id=referral.patient.public_id)
        db.session.commit()
        chain.seal()
        db.session.commit()
    return app


def _empty_target(tmp: Path, name: str):
    url = fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp, name)
    app = create_app(config_for(url, tmp / f"{name}-instance"))
    Path(app.config["PHI_KEYRING_PATH"]).unlink()  # test mode made one; a new host has none
    return app


def _fingerprint(app) -> dict:
    from portal.core.phi import documents
    from portal.patients.models import Patient
    from portal.referrals.models import Attachment

    with app.app_context():
        names = sorted(p.family_name for p in db.session.scalars(select(Patient)))
        files = {}
        for attachment in db.session.scalars(select(Attachment)):
            files[attachment.filename] = b"".join(documents().open(attachment.public_id, attachment.bound_patient_id))
        db.session.remove()
        return {"names": names, "files": files}


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("backup")
    source = _source(tmp)
    target_dir = tmp / "nightly"
    result = source.test_cli_runner().invoke(args=["portal", "backup", str(target_dir)])
    assert result.exit_code == 0, result.output
    yield source, target_dir, tmp
    with source.app_context():
        db.engine.dispose()


def test_the_backup_holds_one_snapshot_and_no_secret(backed_up):
    source, directory, _ = backed_up
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["documents"]["count"] == 3 and manifest["documents"]["missing"] == []  # not the orphan
    assert manifest["database"]["tables"]["referral_attachments"] == 2
    assert manifest["database"]["alembic_revision"] and manifest["keyring"]["kek"].startswith("local:")
    everything = b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())
    assert TEST_KEK.encode() not in everything and source.config["SECRET_KEY"].encode() not in everything
    assert PDF_BYTES not in everything  # documents stay encrypted
    assert oct(directory.stat().st_mode & 0o777) == "0o700"
    from portal.audit.models import AuditEvent

    with source.app_context():
        assert db.session.scalar(select(func.count()).where(AuditEvent.action == "portal.backup_completed")) == 1
        db.session.remove()


def test_restore_into_an_empty_database_passes_verify(backed_up):
    source, directory, tmp = backed_up
    target = _empty_target(tmp, "restored")
    result = target.test_cli_runner().invoke(args=["portal", "restore", str(directory), "--verify"])
    assert result.exit_code == 0, result.output
    assert "Verified: the restored portal is complete and readable." in result.output
    assert "3 documents decrypted end to end" in result.output and "audit chain: 2 sealed events" in result.output
    restored, original = _fingerprint(target), _fingerprint(source)
    assert restored["names"] == original["names"] and restored["files"] == original["files"]
    again = target.test_cli_runner().invoke(args=["portal", "restore", str(directory), "--verify-only"])
    assert again.exit_code == 0, again.output
    with target.app_context():
        db.engine.dispose()


def test_a_damaged_backup_is_refused_before_anything_is_written(backed_up, tmp_path):
    _, directory, tmp = backed_up
    damaged = tmp_path / "damaged"
    shutil.copytree(directory, damaged)
    victim = next(damaged.rglob("*.phi"))
    victim.write_bytes(victim.read_bytes()[:-1] + b"\x00")
    target = _empty_target(tmp_path, "damaged_target")
    result = target.test_cli_runner().invoke(args=["portal", "restore", str(damaged)])
    assert result.exit_code != 0 and "not intact" in result.output and "SHA-256" in result.output
    assert not Path(target.config["PHI_KEYRING_PATH"]).exists()
    with target.app_context():
        from sqlalchemy import inspect

        with db.engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
        db.engine.dispose()


def test_restore_refuses_a_database_that_is_not_empty_and_the_wrong_kek(backed_up, tmp_path):
    source, directory, _ = backed_up
    result = source.test_cli_runner().invoke(args=["portal", "restore", str(directory)])
    assert result.exit_code != 0 and "not empty" in result.output
    url = fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp_path, "other_kek")
    other = create_app(config_for(url, tmp_path / "other-instance", PHI_KEK="a-different-kek-for-this-test"))
    result = other.test_cli_runner().invoke(args=["portal", "restore", str(directory)])
    assert result.exit_code != 0 and "set PHI_KEK" in result.output
    with other.app_context():
        db.engine.dispose()
