"""PHI encryption benchmark: field path, blind index, rotation, file streaming. Prints markdown.

    .venv/bin/python -m bench.bench_phi                 # SQLite, plus PostgreSQL if reachable
    .venv/bin/python -m bench.bench_phi --rows 20000 --pg none

PostgreSQL: --pg URL (default $BENCH_DATABASE_URL, else postgresql+psycopg://postgres@127.0.0.1:5432/portal_bench;
the database is dropped and recreated).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import os
import platform
import secrets
import tempfile
import time
import tracemalloc
import uuid
from datetime import date, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask
from sqlalchemy import Uuid, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.orm.attributes import set_committed_value

from portal.core.phi import (
    Keyring,
    blind_index,
    current_state,
    encrypted,
    encrypted_models,
    init_app,
    normalize,
    using,
)
from portal.core.phi.files import encrypt_stream
from portal.core.phi.keyring import DATA
from portal.core.phi.rotation import count_stale, rotate_model

VALUE_LEN = 64
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/portal_bench"


class BenchBase(DeclarativeBase):
    pass


class BenchRow(BenchBase):
    """Four encrypted fields, like a lean patient row."""

    __tablename__ = "bench_phi_rows"
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    given_name = encrypted(str)
    family_name = encrypted(str)
    birth_date = encrypted(date)
    phone = encrypted(str)
    note: Mapped[str | None] = mapped_column()  # a clear column, as the ORM-cost reference
    family_bidx = blind_index(family_name=normalize.name)


def best_of(fn, n: int, repeat: int = 7) -> float:
    """Seconds per call: the best of ``repeat`` runs of ``n`` calls (least disturbed by the machine)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(n)
        best = min(best, (time.perf_counter() - start) / n)
    return best


def bench_fields(keyring: Keyring) -> list[tuple[str, float]]:
    values = [os.urandom(VALUE_LEN // 2).hex() for _ in range(256)]
    raw = [v.encode() for v in values]
    row_ids = [uuid.uuid4() for _ in values]
    aead = AESGCM(os.urandom(32))

    def bare(n):
        for i in range(n):
            nonce, aad = os.urandom(12), row_ids[i & 255].bytes
            aead.decrypt(nonce, aead.encrypt(nonce, raw[i & 255], aad), aad)

    cipher = keyring.column_cipher("bench_phi_rows", "given_name")

    def column_cipher(n):
        for i in range(n):
            rid = row_ids[i & 255]
            cipher.decrypt(rid, cipher.encrypt(rid, raw[i & 255]))

    field = BenchRow.__dict__["given_name"]

    def field_path(n):
        # What a column type's bind/result processing would do: codec, key lookup, cipher.
        for i in range(n):
            rid = row_ids[i & 255]
            field.decrypt(BenchRow, rid, field.encrypt(BenchRow, rid, values[i & 255]))

    rows = [BenchRow(public_id=rid) for rid in row_ids]
    blobs = [field.encrypt(BenchRow, rid, v) for rid, v in zip(row_ids, values, strict=True)]

    def descriptor(n):
        # Assign (encrypt), then read as if freshly loaded from the database (decrypt).
        for i in range(n):
            row = rows[i & 255]
            row.given_name = values[i & 255]
            set_committed_value(row, "given_name_ct", blobs[i & 255])
            row.given_name  # noqa: B018

    def plain_orm(n):
        # The same ORM traffic on a clear column: SQLAlchemy's own share of the line above.
        for i in range(n):
            row = rows[i & 255]
            row.note = values[i & 255]
            set_committed_value(row, "note", values[i & 255])
            row.note  # noqa: B018

    n = 20_000
    base = best_of(bare, n)
    return [
        ("bare AESGCM encrypt+decrypt, 64 B, 16 B AAD, random nonce", base),
        ("ColumnCipher encrypt+decrypt (header, row/column AAD, padding)", best_of(column_cipher, n)),
        ("encrypted(str) field: encode+encrypt, decrypt+decode (the column-type path)", best_of(field_path, n)),
        ("same through the ORM: assign, then read after a load", best_of(descriptor, n)),
        ("reference: clear mapped column, assign + read after a load (no crypto)", best_of(plain_orm, n)),
    ]


def bench_blind(keyring: Keyring) -> list[tuple[str, float]]:
    key = os.urandom(32)
    names = [f"Muñoz-{i} de la Cruz" for i in range(256)]
    ascii_names = [f"Okonkwo-{i} de la Cruz" for i in range(256)]
    phones = [f"(608) 555-{i:04d}" for i in range(256)]
    spec = BenchRow.__dict__["__phi_blind_indexes__"][0]
    indexer = keyring.blind_indexer("bench_phi_rows", "family_bidx")
    from portal.core.phi.blind import message

    def bare(n):
        for i in range(n):
            hmac.digest(key, names[i & 255].encode(), hashlib.sha256)

    def name_index(n):
        for i in range(n):
            indexer.compute(spec.message_for((names[i & 255],)))

    def ascii_name_index(n):
        for i in range(n):
            indexer.compute(spec.message_for((ascii_names[i & 255],)))

    def phone_index(n):
        for i in range(n):
            indexer.compute(message([normalize.us_phone(phones[i & 255])]))

    n = 50_000
    return [
        ("bare hmac.digest SHA-256", best_of(bare, n)),
        ("blind index, ASCII name (lowercase, spaces)", best_of(ascii_name_index, n)),
        ("blind index, accented name (NFKD, strip marks, NFKC, casefold, spaces)", best_of(name_index, n)),
        ("blind index, US phone to E.164", best_of(phone_index, n)),
    ]


def bench_rotation(url: str, rows: int) -> tuple[float, int]:
    """Fill ``rows`` rows under key 1, promote a new key, time a full rotation. Returns (s, fields)."""
    engine = create_engine(url)
    BenchBase.metadata.drop_all(engine)
    BenchBase.metadata.create_all(engine)
    keyring = Keyring.generate()
    ciphers = {
        f: keyring.column_cipher("bench_phi_rows", f) for f in ("given_name", "family_name", "birth_date", "phone")
    }
    table = BenchRow.__table__
    born = date(1940, 1, 1)
    with engine.begin() as conn:
        for start in range(0, rows, 10_000):
            batch = []
            for i in range(start, min(start + 10_000, rows)):
                rid = uuid.uuid4()
                plain = {
                    "given_name": f"Given{i}",
                    "family_name": f"Family{i}",
                    "birth_date": (born + timedelta(days=i % 25_000)).isoformat(),
                    "phone": f"+1608555{i % 10_000:04d}",
                }
                batch.append(
                    {
                        "public_id": rid,
                        **{f + "_ct": ciphers[f].encrypt(rid, v.encode()) for f, v in plain.items()},
                        "family_bidx": None,
                    }
                )
            conn.execute(insert(table), batch)
    new, key = keyring.with_new_key(DATA)
    new = new.promoted(key.id)
    models = list(encrypted_models(BenchBase.registry))
    with using(new), Session(engine) as session:
        assert count_stale(session, models, new) == rows
        start = time.perf_counter()
        result = rotate_model(session, models[0], new, batch_size=2_000)
        elapsed = time.perf_counter() - start
        assert count_stale(session, models, new) == 0 and result.fields == rows * 4
        sample = session.scalars(select(BenchRow).order_by(func.random()).limit(20)).all()
        assert all(r.family_name.startswith("Family") for r in sample)
    BenchBase.metadata.drop_all(engine)
    engine.dispose()
    return elapsed, result.fields


class ZeroReader(io.RawIOBase):
    """A stream of ``size`` bytes that never exists in memory as a whole."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.block = os.urandom(1024 * 1024)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = min(n, self.remaining, len(self.block))
        self.remaining -= n
        return self.block[:n]


def bench_files(keyring: Keyring) -> dict[str, float]:
    size = 50 * 1024 * 1024
    data = os.urandom(size)
    aead = AESGCM(os.urandom(32))
    doc, patient = uuid.uuid4(), uuid.uuid4()

    def bare(_):
        aead.encrypt(os.urandom(12), data, None)

    def ours(_):
        with open(os.devnull, "wb") as sink:
            encrypt_stream(keyring, io.BytesIO(data), sink, doc, patient)

    with tempfile.TemporaryDirectory() as tmp:
        src_path = Path(tmp) / "plain.bin"
        src_path.write_bytes(data)

        def disk(_):
            with src_path.open("rb") as src, (Path(tmp) / "enc.phi").open("wb") as dst:
                encrypt_stream(keyring, src, dst, doc, patient)
                dst.flush()
                os.fsync(dst.fileno())

        out = {
            "bare": size / best_of(bare, 1, 3) / 1e6,
            "ours_memory": size / best_of(ours, 1, 3) / 1e6,
            "ours_disk": size / best_of(disk, 1, 3) / 1e6,
        }
    for mb in (10, 50):
        reader = ZeroReader(mb * 1024 * 1024)  # its 1 MiB source block is not ours to count
        tracemalloc.start()
        with open(os.devnull, "wb") as sink:
            encrypt_stream(keyring, reader, sink, doc, patient)
        out[f"peak_{mb}"] = tracemalloc.get_traced_memory()[1] / 1024
        tracemalloc.stop()
    return out


def flask_app(tmp: Path) -> Flask:
    app = Flask("bench_phi", instance_path=str(tmp))
    app.config.update(
        PORTAL_ENV="test",
        PHI_KEK=secrets.token_urlsafe(32),
        PHI_KEYRING_PATH=str(tmp / "keyring.bin"),
        UPLOAD_DIR=str(tmp / "uploads"),
    )
    init_app(app)
    return app


def reachable(url: str) -> bool:
    try:
        admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            name = make_url(url).database
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return True
    except Exception as exc:  # noqa: BLE001 - a benchmark reports and carries on
        print(f"<!-- PostgreSQL skipped: {type(exc).__name__} -->")
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--pg", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG), help="URL, or 'none'")
    args = parser.parse_args()
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}\n"
    )
    with tempfile.TemporaryDirectory() as tmp, flask_app(Path(tmp)).app_context():
        # Inside an app context, as in a request: the keyring is found the way views find it.
        keyring = current_state().keyring
        fields = bench_fields(keyring)
        blind = bench_blind(keyring)
    base = fields[0][1]
    print("| per-field path (encrypt + decrypt) | µs per value | vs bare AESGCM |\n|---|---:|---:|")
    for name, seconds in fields:
        print(f"| {name} | {seconds * 1e6:.2f} | {seconds / base:.2f}x |")
    base = blind[0][1]
    print("\n| blind index | µs per value | vs bare hmac.digest |\n|---|---:|---:|")
    for name, seconds in blind:
        print(f"| {name} | {seconds * 1e6:.2f} | {seconds / base:.2f}x |")

    print(f"\n| rotation, {args.rows:,} rows x 4 encrypted fields | seconds | fields/s |\n|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("SQLite (file, WAL)", f"sqlite:///{tmp}/bench.db")]
        if args.pg != "none" and reachable(args.pg):
            targets.append(("PostgreSQL 15 (local)", args.pg))
        for label, url in targets:
            seconds, count = bench_rotation(url, args.rows)
            print(f"| {label} | {seconds:.2f} | {count / seconds:,.0f} |")

    files = bench_files(keyring)
    print("\n| 50 MB file | MB/s | vs bare AESGCM |\n|---|---:|---:|")
    print(f"| bare AESGCM, one call, whole file in memory | {files['bare']:,.0f} | 1.00x |")
    for label, key in (
        ("encrypt_stream, 64 KiB chunks, memory to /dev/null", "ours_memory"),
        ("encrypt_stream, file to file with fsync", "ours_disk"),
    ):
        print(f"| {label} | {files[key]:,.0f} | {files[key] / files['bare']:.2f}x |")
    print("\n| streaming encryption, peak traced memory | KiB |\n|---|---:|")
    print(f"| 10 MB file | {files['peak_10']:,.0f} |\n| 50 MB file | {files['peak_50']:,.0f} |")


if __name__ == "__main__":
    main()
