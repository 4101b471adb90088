"""Database base mixins and engine tuning (the request's transaction: portal.core.unit_of_work)."""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Engine, Enum, Uuid, event
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from portal.core.time import as_utc, now_utc
from portal.core.unit_of_work import Mode, current_mode


class UTCDateTime(TypeDecorator):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime refused: use portal.core.time.now_utc()")
        return value

    def process_result_value(self, value, dialect):
        return as_utc(value)


class PkMixin:
    """Integer key for joins, opaque UUID for URLs: integers never leave the server."""

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4, nullable=False)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc, nullable=False)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """WAL and foreign keys for SQLite (its busy timeout is a connect argument: config.py)."""
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    # Let SQLAlchemy (not pysqlite) emit BEGIN, so SAVEPOINT and rollback behave.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    """A write transaction takes SQLite's writer lock up front (waiting out the busy timeout),
    so it can never fail to upgrade a read snapshot that another writer made stale."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE" if current_mode() is Mode.WRITE else "BEGIN")


def enum_type(enum_cls: type, length: int = 32) -> Enum:
    """Store a StrEnum by value in a VARCHAR with a CHECK: portable and readable in SQL."""
    return Enum(
        enum_cls,
        native_enum=False,
        length=length,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
        name=enum_cls.__name__.lower(),
    )


# Indexes with a descending column: SQLite's reflection does not report the direction, so Alembic
# cannot compare them there and would drop and re-add them on every autogenerate; their migrations
# write them by hand (see a89bb2d58a49), and comparisons leave them out.
HAND_WRITTEN_INDEXES = frozenset({"ix_referrals_queue"})


def include_in_comparison(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's include_object hook for autogenerate and the models-match-migrations test."""
    return not (type_ == "index" and name in HAND_WRITTEN_INDEXES)
