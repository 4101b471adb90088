"""Portable SQL pieces for the reports: day differences, month buckets and index hints.

Each hides one difference between SQLite and PostgreSQL behind one function, so report
queries read the same on both databases.
"""

from datetime import date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import ColumnElement, Float, Select, cast, func, text
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler

from portal.core.time import practice_zone
from portal.extensions import db


def dialect() -> str:
    return db.session.get_bind().dialect.name


def days_between(later, earlier) -> ColumnElement[float]:
    """(later - earlier) in days, fractional, in double precision on both databases.

    PostgreSQL's EXTRACT answers NUMERIC: cast it first, so every writer of a stored wait
    (the report facts, their migration) gets the same bits and a drift check can compare exactly.
    """
    if dialect() == "postgresql":
        return cast(func.extract("epoch", later - earlier), Float) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


def month_bucket(column, around: date) -> ColumnElement[str]:
    """'YYYY-MM' of a timestamp in the practice's time zone.

    PostgreSQL converts with the zone's rules; SQLite has no zone database, so it shifts by
    the zone's UTC offset on ``around`` (a referral within an hour of midnight on the first
    of a month may land in the neighbouring month when daylight saving time differs).
    """
    zone = current_app.config["PORTAL_TIMEZONE"]
    if dialect() == "postgresql":
        return func.to_char(func.timezone(zone, column), "YYYY-MM")
    offset = datetime.combine(around, time(12), tzinfo=practice_zone()).utcoffset() or timedelta()
    return func.strftime("%Y-%m", column, f"{offset.total_seconds() / 3600:+.2f} hours")


def tune_for_reports() -> None:
    """PostgreSQL, for this transaction only: room to sort in memory, and no JIT.

    The planner's cost estimates for report queries cross the JIT threshold, and compiling
    (about 0.6 s) costs far more than it saves on queries that run in a few hundred
    milliseconds. Nothing to do on SQLite.
    """
    if dialect() == "postgresql":
        db.session.execute(text("SET LOCAL jit = off"))
        # Pairing 100,000 episodes' scores sorts or hashes a few MB: keep it in memory.
        db.session.execute(text("SET LOCAL work_mem = '64MB'"))


def _sqlite_from_hint(self, table, hint_text):
    """Render a table hint after the table name (SQLite's INDEXED BY), as SQLAlchemy does for MySQL's."""
    return hint_text


# SQLAlchemy accepts Select.with_hint(..., dialect_name="sqlite") but its SQLite compiler renders
# no table hints; this renders them. Only statements that ask for a SQLite hint are affected.
SQLiteCompiler.get_from_hint_text = _sqlite_from_hint


def prefer_index(query: Select, table, index: str) -> Select:
    """On SQLite, read ``table`` through ``index`` (INDEXED BY); other databases plan as usual.

    SQLite keeps no histograms: it guesses that any two-sided date range is narrow, and it
    will drive a scan from an IN list through whichever index starts with that column. For
    the report statements that read a whole cohort, one index is right at every range width
    (checked with the benchmark in bench/bench_reports.py); name it.
    """
    return query.with_hint(table, f"INDEXED BY {index}", dialect_name="sqlite")
