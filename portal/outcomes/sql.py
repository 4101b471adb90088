"""Portable SQL pieces for the reports: day differences, month buckets and the median.

Each hides one difference between SQLite and PostgreSQL behind one function, so report
queries read the same on both databases.
"""
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import ColumnElement, Select, func, select, text

from portal.extensions import db


def dialect() -> str:
    return db.session.get_bind().dialect.name


def practice_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["PORTAL_TIMEZONE"])


def day_start(day: date) -> datetime:
    """Midnight at the practice, as an aware UTC datetime (report ranges are practice days)."""
    return datetime.combine(day, time(), tzinfo=practice_zone()).astimezone(UTC)


def days_between(later, earlier) -> ColumnElement[float]:
    """(later - earlier) in days, fractional."""
    if dialect() == "postgresql":
        return func.extract("epoch", later - earlier) / 86400.0
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
    """PostgreSQL, for this transaction only: room to sort in memory, and no JIT. The planner's cost estimates for report queries
    cross the JIT threshold, and compiling (about 0.6 s) costs far more than it saves on
    queries that run in a few hundred milliseconds. Nothing to do on SQLite."""
    if dialect() == "postgresql":
        db.session.execute(text("SET LOCAL jit = off"))
        # Pairing 100,000 episodes' scores sorts or hashes a few MB: keep it in memory.
        db.session.execute(text("SET LOCAL work_mem = '64MB'"))


def median(values: Select) -> float | None:
    """The median of a one-column SELECT (NULLs ignored), in one statement.

    PostgreSQL: percentile_cont(0.5). SQLite has no ordered-set aggregates: number the sorted
    values with window functions (ROW_NUMBER over the ORDER BY, COUNT over everything) and
    average the middle one (odd n) or two (even n); the values are computed once.
    """
    sub = values.subquery()
    column = sub.c[0]
    if dialect() == "postgresql":
        query = select(func.percentile_cont(0.5).within_group(column)).where(column.is_not(None))
    else:
        ranked = select(column.label("v"), func.row_number().over(order_by=column).label("rn"),
                        func.count().over().label("n")).where(column.is_not(None)).subquery()
        query = select(func.avg(ranked.c.v)).where(ranked.c.rn.in_([(ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2]))
    value = db.session.scalar(query)
    return None if value is None else float(value)
