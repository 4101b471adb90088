"""Chunked streaming encryption of documents: sizes, tampering, limits, memory."""

import hashlib
import io
import os
import tracemalloc
import uuid

import pytest

from portal.core.phi.documents import DocumentStore
from portal.core.phi.errors import FileIntegrityError, FileTooLargeError
from portal.core.phi.files import CHUNK_SIZE, HEADER_LEN, TAG_LEN, decrypt_stream, encrypt_stream
from portal.core.phi.keyring import DATA, Keyring
from portal.core.phi.runtime import PhiState

DOC = uuid.UUID("11111111-2222-4333-8444-555555555555")
PATIENT = uuid.UUID("99999999-8888-4777-8666-555555555555")
SEALED = CHUNK_SIZE + TAG_LEN


@pytest.fixture(scope="module")
def keyring():
    return Keyring.generate()


def _encrypt(keyring, data: bytes, **kwargs) -> bytes:
    out = io.BytesIO()
    assert encrypt_stream(keyring, io.BytesIO(data), out, DOC, PATIENT, **kwargs) == len(data)
    return out.getvalue()


def _decrypt(keyring, blob: bytes, doc=DOC, patient=PATIENT) -> bytes:
    return b"".join(decrypt_stream(keyring, io.BytesIO(blob), doc, patient))


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, 20 * 1024 * 1024],
    ids=["0", "1", "chunk-1", "chunk", "chunk+1", "3 chunks", "20MB"],
)
def test_round_trip(keyring, size):
    data = os.urandom(size)
    blob = _encrypt(keyring, data)
    chunks = max(1, -(-size // CHUNK_SIZE))
    assert len(blob) == HEADER_LEN + size + chunks * TAG_LEN
    assert hashlib.sha256(_decrypt(keyring, blob)).digest() == hashlib.sha256(data).digest()


@pytest.fixture(scope="module")
def three_chunks(keyring):
    data = os.urandom(2 * CHUNK_SIZE + 100)
    return data, _encrypt(keyring, data)


def _chunks(blob):
    body = blob[HEADER_LEN:]
    return blob[:HEADER_LEN], [body[i : i + SEALED] for i in range(0, len(body), SEALED)]


def test_truncation_at_chunk_boundary_is_detected(keyring, three_chunks):
    head, chunks = _chunks(three_chunks[1])
    with pytest.raises(FileIntegrityError, match="chunk 1"):
        _decrypt(keyring, head + chunks[0] + chunks[1])


def test_truncation_inside_a_chunk_is_detected(keyring, three_chunks):
    with pytest.raises(FileIntegrityError):
        _decrypt(keyring, three_chunks[1][:-5])
    with pytest.raises(FileIntegrityError):
        _decrypt(keyring, three_chunks[1][:HEADER_LEN])


def test_reordered_chunks_are_detected(keyring, three_chunks):
    head, chunks = _chunks(three_chunks[1])
    with pytest.raises(FileIntegrityError, match="chunk 0"):
        _decrypt(keyring, head + chunks[1] + chunks[0] + chunks[2])


def test_chunk_swapped_from_another_file_is_detected(keyring, three_chunks):
    head, chunks = _chunks(three_chunks[1])
    _, others = _chunks(_encrypt(keyring, three_chunks[0]))  # same bytes, same ids, other file
    with pytest.raises(FileIntegrityError, match="chunk 1"):
        _decrypt(keyring, head + chunks[0] + others[1] + chunks[2])


def test_appended_data_is_detected(keyring, three_chunks):
    with pytest.raises(FileIntegrityError):
        _decrypt(keyring, three_chunks[1] + b"x")
    exact = _encrypt(keyring, os.urandom(2 * CHUNK_SIZE))  # last chunk full size
    with pytest.raises(FileIntegrityError):
        _decrypt(keyring, exact + os.urandom(TAG_LEN))


@pytest.mark.parametrize("offset", [0, 5, 7, 12, 20, 50, 70, HEADER_LEN + 3])
def test_header_or_body_tampering_is_detected(keyring, three_chunks, offset):
    blob = bytearray(three_chunks[1])
    blob[offset] ^= 0x40
    with pytest.raises(FileIntegrityError):
        _decrypt(keyring, bytes(blob))


def test_file_of_another_document_or_patient_is_refused(keyring, three_chunks):
    with pytest.raises(FileIntegrityError, match="does not belong"):
        _decrypt(keyring, three_chunks[1], doc=uuid.uuid4())
    with pytest.raises(FileIntegrityError, match="does not belong"):
        _decrypt(keyring, three_chunks[1], patient=uuid.uuid4())


class CountingReader(io.RawIOBase):
    """An upload stream that records how much was read before the limit stopped it."""

    def __init__(self, total: int) -> None:
        self.remaining, self.read_bytes = total, 0

    def read(self, size: int = -1) -> bytes:
        size = min(size, self.remaining)
        self.remaining -= size
        self.read_bytes += size
        return b"\0" * size


def test_size_limit_enforced_while_streaming(keyring, tmp_path):
    store = DocumentStore(PhiState(keyring), tmp_path)
    upload = CountingReader(100 * 1024 * 1024)
    with pytest.raises(FileTooLargeError, match="1048576"):
        store.save(DOC, PATIENT, upload, max_bytes=1024 * 1024)
    assert upload.read_bytes <= 1024 * 1024 + 2 * CHUNK_SIZE  # stopped early, not after 100 MB
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_store_round_trip_and_rekey(keyring, tmp_path):
    data = os.urandom(CHUNK_SIZE * 2 + 7)
    store = DocumentStore(PhiState(keyring), tmp_path)
    store.save(DOC, PATIENT, io.BytesIO(data), max_bytes=len(data))
    path = store.path_for(DOC)
    assert path.is_file() and str(PATIENT) not in str(path)
    assert b"".join(store.open(DOC, PATIENT)) == data
    assert store.key_counts() == {1: 1}

    rotated, key = keyring.with_new_key(DATA)
    store.state.replace(rotated.promoted(key.id))
    assert store.rekey(path) is True and store.rekey(path) is False
    assert store.key_counts() == {key.id: 1}
    assert b"".join(store.open(DOC, PATIENT)) == data


def _peak_encrypting(keyring, size: int) -> int:
    src = CountingReader(size)
    with open(os.devnull, "wb") as sink:
        tracemalloc.start()
        try:
            encrypt_stream(keyring, src, sink, DOC, PATIENT)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def test_memory_stays_flat_as_the_file_grows(keyring):
    small, large = _peak_encrypting(keyring, 2 * 1024 * 1024), _peak_encrypting(keyring, 24 * 1024 * 1024)
    assert large < 8 * CHUNK_SIZE
    assert large < small * 1.5 + CHUNK_SIZE
