"""The field format: round trips, tampering, row/column binding, key selection."""

import uuid

import pytest

from portal.core.phi.cipher import HEADER_LEN, NONCE_LEN, ColumnCipher, key_id_of, pad, unpad
from portal.core.phi.errors import DecryptionError, UnknownKeyError
from portal.core.phi.keyring import Keyring

ROW = uuid.UUID("0f6b5b8e-2d7c-4c1e-9a55-3d1c2b7e9f01")
OTHER_ROW = uuid.UUID("6a1f0e77-51a4-4b8e-8a2c-90d4a6c1e2f3")
SECRET = b"Okonkwo"


@pytest.fixture
def keyring():
    return Keyring.generate()


@pytest.fixture
def cipher(keyring):
    return keyring.column_cipher("patients", "family_name")


@pytest.mark.parametrize("size", [0, 1, 14, 15, 16, 17, 64, 1000])
def test_round_trip_and_length_hidden_to_a_block(cipher, size):
    data = bytes(range(256)) * 4
    blob = cipher.encrypt(ROW, data[:size])
    assert cipher.decrypt(ROW, blob) == data[:size]
    assert (len(blob) - HEADER_LEN - NONCE_LEN - 16) % 16 == 0
    assert key_id_of(blob) == 1


def test_padding_keeps_trailing_zero_bytes():
    assert unpad(pad(b"ab\x00\x00")) == b"ab\x00\x00"
    assert unpad(b"\x00" * 16) is None


def test_nonce_is_fresh_per_value(cipher):
    assert cipher.encrypt(ROW, SECRET) != cipher.encrypt(ROW, SECRET)


def test_header_layout(cipher):
    blob = cipher.encrypt(ROW, SECRET)
    assert blob[0] == 1 and blob[1] == 1
    assert int.from_bytes(blob[2:6], "big") == 1


def _flip(blob: bytes, index: int) -> bytes:
    mutable = bytearray(blob)
    mutable[index] ^= 0x01
    return bytes(mutable)


@pytest.mark.parametrize(
    "where",
    ["version", "algorithm", "key id", "nonce", "ciphertext", "tag"],
)
def test_tampering_fails_closed(cipher, where):
    blob = cipher.encrypt(ROW, SECRET)
    index = {"version": 0, "algorithm": 1, "key id": 5, "nonce": 8, "ciphertext": 20, "tag": len(blob) - 1}[where]
    with pytest.raises(DecryptionError) as caught:
        cipher.decrypt(ROW, _flip(blob, index))
    message = str(caught.value)
    assert "patients.family_name" in message and str(ROW) in message
    assert "Okonkwo" not in message


def test_truncated_value_fails_closed(cipher):
    blob = cipher.encrypt(ROW, SECRET)
    for cut in (0, 5, 20, len(blob) - 1):
        with pytest.raises(DecryptionError):
            cipher.decrypt(ROW, blob[:cut])


def test_value_moved_to_another_row_fails(cipher):
    blob = cipher.encrypt(ROW, SECRET)
    with pytest.raises(DecryptionError, match="another row or column"):
        cipher.decrypt(OTHER_ROW, blob)


def test_value_moved_to_another_column_fails(keyring, cipher):
    blob = cipher.encrypt(ROW, SECRET)
    with pytest.raises(DecryptionError, match="patients.given_name"):
        keyring.column_cipher("patients", "given_name").decrypt(ROW, blob)


def test_value_moved_to_another_table_fails(keyring, cipher):
    blob = cipher.encrypt(ROW, SECRET)
    with pytest.raises(DecryptionError):
        keyring.column_cipher("contacts", "family_name").decrypt(ROW, blob)


def test_unknown_key_id_is_a_clear_error(cipher):
    blob = cipher.encrypt(ROW, SECRET)
    forged = blob[:2] + (77).to_bytes(4, "big") + blob[6:]
    with pytest.raises(UnknownKeyError) as caught:
        cipher.decrypt(ROW, forged)
    assert caught.value.key_id == 77
    assert "key id 77 is not in this keyring" in str(caught.value)


def test_key_chosen_by_id_after_promotion(keyring):
    old = keyring.column_cipher("patients", "phone").encrypt(ROW, SECRET)
    rotated, new_key = keyring.with_new_key("data")
    rotated = rotated.promoted(new_key.id)
    cipher = rotated.column_cipher("patients", "phone")
    fresh = cipher.encrypt(ROW, SECRET)
    assert key_id_of(fresh) == new_key.id
    assert cipher.decrypt(ROW, old) == SECRET == cipher.decrypt(ROW, fresh)
    assert not cipher.is_current(old) and cipher.is_current(fresh)


def test_retired_key_is_named_as_retired(keyring):
    old = keyring.column_cipher("patients", "phone").encrypt(ROW, SECRET)
    rotated, new_key = keyring.with_new_key("data")
    rotated = rotated.promoted(new_key.id).retired(1)
    with pytest.raises(UnknownKeyError, match="key id 1 is retired"):
        rotated.column_cipher("patients", "phone").decrypt(ROW, old)


def test_decrypt_never_returns_input_for_garbage(cipher):
    garbage = b"\x01\x01\x00\x00\x00\x01" + b"Okonkwo padded out to length......." * 2
    with pytest.raises(DecryptionError):
        cipher.decrypt(ROW, garbage)


def test_column_keys_differ_per_column_and_key():
    a = ColumnCipher("t", "c", {1: b"k" * 32}, 1)
    assert a.decrypt(ROW, a.encrypt(ROW, b"x")) == b"x"
    assert "k" * 3 not in repr(a)
