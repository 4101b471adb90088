"""`flask phi ...`: key life cycle, status, rotation, and the refusals that protect data."""

import io
import re
import uuid

import pytest

from portal.core.phi import documents
from portal.core.phi.keyring import ACTIVE, DECRYPT_ONLY, RETIRED
from portal.patients.models import Patient
from tests.phi.conftest import phi_state, reload_all


@pytest.fixture
def run(app, phi_db):
    runner = app.test_cli_runner()

    def _run(*args, ok=True):
        result = runner.invoke(args=["phi", *args])
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    return _run


def counts(output: str, column: str) -> str:
    line = next(line for line in output.splitlines() if f"patients.{column} " in line)
    return re.sub(r"\s+", " ", line.split("field", 1)[-1].split("blind-index", 1)[-1]).strip()


def test_full_key_life_cycle(app, run, demo_patients):
    n = len(demo_patients)
    doc_id, scan = uuid.uuid4(), b"%PDF-1.7 signed consent " * 5000
    documents().save(doc_id, demo_patients[0].public_id, io.BytesIO(scan))
    assert counts(run("status"), "family_name_ct") == f"key 1: {n}"

    assert "Key 3 (data) added, decrypt-only" in run("add-key")
    assert phi_state(app).keyring.get(3).state == DECRYPT_ONLY
    assert "Key 4 (blind-index) added" in run("add-key", "--blind-index")
    run("promote", "3")
    run("promote", "4")
    keyring = phi_state(app).keyring
    assert keyring.get(3).state == ACTIVE and keyring.get(1).state == DECRYPT_ONLY

    out = run("retire", "1", "--yes", ok=False)
    assert "key 1 still protects values in: patients.given_name_ct" in out

    out = run("rotate", "--batch-size", "8")
    assert f"in {n} rows" in out and "1 documents re-keyed" in out
    status = run("status")
    assert re.search(r"documents under .* files\s+key 3: 1", status)
    assert counts(status, "family_name_ct") == f"key 3: {n}"
    assert counts(status, "phone_bidx") == f"key 4: {n}"

    run("retire", "1", "--yes")
    run("retire", "2", "--yes")
    keyring = phi_state(app).keyring
    assert keyring.get(1).state == RETIRED and keyring.get(1).material is None
    assert [p.family_name for p in reload_all(Patient)] == [p.family_name for p in demo_patients]
    assert b"".join(documents().open(doc_id, demo_patients[0].public_id)) == scan


def test_refusals(run):
    assert "already exists" in run("init-keyring", ok=False)
    assert "active: promote another key first" in run("retire", "1", "--yes", ok=False)
    assert "no key with id 99" in run("promote", "99", ok=False)


def test_keyring_file_reflects_changes_for_other_processes(app, run):
    from portal.core.phi import keyfile

    run("add-key")
    state = phi_state(app)
    on_disk = keyfile.load(state.path, state.kek)
    assert [k.id for k in on_disk.keys] == [1, 2, 3]


def test_rotate_with_nothing_to_do(run, phi_db):
    assert "Re-encrypted 0 values" in run("rotate")


def test_rewrap_keyring_under_a_new_kek(app, run, monkeypatch):
    import secrets

    from portal.core.phi import keyfile
    from portal.core.phi.kek import LocalKeyEncryptionKey

    state = phi_state(app)
    before = [k.material for k in state.keyring.keys]
    new = secrets.token_urlsafe(32)
    monkeypatch.setenv("PHI_NEW_KEK", new)
    assert "re-wrapped with KEK" in run("rewrap-keyring")
    reloaded = keyfile.load(state.path, LocalKeyEncryptionKey.from_setting(new, strict=True))
    assert [k.material for k in reloaded.keys] == before
    # Running processes still hold the old KEK: they keep their keys instead of failing.
    state._mtime = None
    assert state.reload_if_changed() is False
    assert [k.material for k in state.keyring.keys] == before
