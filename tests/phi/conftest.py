"""PHI fixtures: an app with the PHI layer, a private keyring per test, a committed database."""

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.core import phi
from portal.core.phi.keyring import Keyring
from portal.core.phi.runtime import PhiState
from portal.extensions import db as _db
from portal.patients.demo import seed_demo_patients

# Values a test may never find in logs, errors or the raw database.
PHI_PROBES = ("Okonkwo", "Lindqvist", "Kowalczyk", "Raghavan", "1958-03-14", "555-0100")


def phi_state(app) -> PhiState:
    """The app's PHI state; initialised here if the app factory did not (yet) call init_app."""
    if phi.runtime.EXTENSION_KEY not in app.extensions:
        phi.init_app(app)
    return app.extensions[phi.runtime.EXTENSION_KEY]


@pytest.fixture
def phi_db(app, db, tmp_path):
    """``db`` plus a private copy of the keyring: key changes made by a test stay in the test."""
    state = phi_state(app)
    saved = (state.path, state.keyring, state.upload_dir)
    state.path = tmp_path / "keyring.bin"
    shutil.copy(saved[0], state.path)
    state.upload_dir = tmp_path / "uploads"
    state.replace(saved[1])
    try:
        yield db
    finally:
        state.path, _, state.upload_dir = saved
        state.replace(saved[1])


@pytest.fixture
def keyring(phi_db, app) -> Keyring:
    return phi_state(app).keyring


@pytest.fixture
def demo_patients(phi_db):
    patients = seed_demo_patients(30)
    _db.session.commit()
    return patients


@pytest.fixture(scope="module")
def committed_app(tmp_path_factory, request):
    """A separate, migrated database whose data is really committed (the raw-bytes tests need it)."""
    from tests.conftest import fresh_database, migrated_app

    tmp = tmp_path_factory.mktemp("phi-committed")
    url = fresh_database(
        os.environ.get("TEST_DATABASE_URL"), tmp, "phi_" + request.module.__name__.rsplit(".", 1)[-1][:20]
    )
    app = migrated_app(url, tmp / "instance", SQLALCHEMY_ECHO="debug")
    phi_state(app)
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


def reload_all(model):
    """Expire and reload every row, so every value is decrypted from what the database holds."""
    _db.session.expire_all()
    return list(_db.session.scalars(select(model).order_by(model.id)))


def sqlite_path(app) -> Path | None:
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
