"""Keyring life cycle, the wrapped keyring file and the key-encryption key."""

import secrets

import pytest

from portal.core.phi import keyfile
from portal.core.phi.errors import KeyringError, KeyringMissingError
from portal.core.phi.kek import KeyEncryptionKey, LocalKeyEncryptionKey
from portal.core.phi.keyring import ACTIVE, BLIND, DATA, DECRYPT_ONLY, RETIRED, Keyring


@pytest.fixture
def kek():
    return LocalKeyEncryptionKey.from_setting(secrets.token_urlsafe(32), strict=True)


def test_generate_has_one_active_key_per_purpose():
    keyring = Keyring.generate()
    assert keyring.active(DATA).id == 1 and keyring.active(BLIND).id == 2
    assert "material" not in repr(keyring.keys[0])


def test_life_cycle_add_promote_retire():
    keyring, key = Keyring.generate().with_new_key(DATA)
    assert key.id == 3 and key.state == DECRYPT_ONLY
    assert keyring.active(DATA).id == 1
    keyring = keyring.promoted(3)
    assert keyring.active(DATA).id == 3 and keyring.get(1).state == DECRYPT_ONLY
    keyring = keyring.retired(1)
    assert keyring.get(1).state == RETIRED and keyring.get(1).material is None
    _, again = keyring.with_new_key(DATA)
    assert again.id == 4  # ids are never reused, even after retirement


def test_active_key_cannot_be_retired_nor_retired_promoted():
    keyring = Keyring.generate()
    with pytest.raises(KeyringError, match="active"):
        keyring.retired(1)
    keyring, key = keyring.with_new_key(DATA)
    keyring = keyring.promoted(key.id).retired(1)
    with pytest.raises(KeyringError, match="retired"):
        keyring.promoted(1)
    with pytest.raises(KeyringError, match="no key"):
        keyring.promoted(99)


def test_derived_ciphers_are_cached():
    keyring = Keyring.generate()
    assert keyring.column_cipher("patients", "email") is keyring.column_cipher("patients", "email")
    assert keyring.blind_indexer("patients", "email_bidx") is keyring.blind_indexer("patients", "email_bidx")


def test_file_round_trip_is_wrapped(tmp_path, kek):
    path = tmp_path / "keyring.bin"
    keyring = Keyring.generate()
    keyfile.save(path, kek, keyring)
    raw = path.read_bytes()
    assert raw.startswith(b"PHIKR") and b"material" not in raw and b"data" not in raw[20:]
    assert (path.stat().st_mode & 0o777) == 0o600
    loaded = keyfile.load(path, kek)
    assert [(k.id, k.state, k.material) for k in loaded.keys] == [(k.id, k.state, k.material) for k in keyring.keys]


def test_wrong_kek_is_refused_with_both_fingerprints(tmp_path, kek):
    path = tmp_path / "keyring.bin"
    keyfile.save(path, kek, Keyring.generate())
    other = LocalKeyEncryptionKey.from_setting(secrets.token_urlsafe(32), strict=True)
    with pytest.raises(KeyringError, match=f"wrapped by KEK {kek.key_id}.*PHI_KEK is {other.key_id}"):
        keyfile.load(path, other)


def test_tampered_keyring_file_is_refused(tmp_path, kek):
    path = tmp_path / "keyring.bin"
    keyfile.save(path, kek, Keyring.generate())
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(KeyringError, match="cannot be decrypted"):
        keyfile.load(path, kek)


def test_missing_keyring_file(tmp_path, kek):
    with pytest.raises(KeyringMissingError):
        keyfile.load(tmp_path / "none.bin", kek)


def test_kek_setting_rules():
    assert isinstance(LocalKeyEncryptionKey.from_setting(secrets.token_urlsafe(32), strict=True), KeyEncryptionKey)
    with pytest.raises(KeyringError, match="at least 32"):
        LocalKeyEncryptionKey.from_setting("correct horse battery staple", strict=True)
    with pytest.raises(KeyringError, match="not set"):
        LocalKeyEncryptionKey.from_setting("", strict=False)
    # Outside production any string works, and the same string gives the same KEK.
    a = LocalKeyEncryptionKey.from_setting("test-kek", strict=False)
    assert a.key_id == LocalKeyEncryptionKey.from_setting("test-kek", strict=False).key_id
    assert "test-kek" not in repr(a)


def test_keyring_document_validation():
    doc = Keyring.generate().to_json()
    doc["keys"][0]["state"] = ACTIVE
    doc["keys"][1]["purpose"] = DATA  # two active data keys
    with pytest.raises(KeyringError, match="exactly one active"):
        Keyring.from_json(doc)
    with pytest.raises(KeyringError, match="format"):
        Keyring.from_json({"format": 9, "keys": []})
