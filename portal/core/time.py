"""One clock for the whole portal: timezone-aware UTC, and the practice's calendar.

Instants are stored and compared in UTC. Calendar dates (a consent's effective and expiry
dates, a visit date, "today" in a form or a report range) are the practice's dates, in
``PORTAL_TIMEZONE``: on a UTC server the host's ``date.today()`` runs up to a day ahead of
the practice, and a consent dated tomorrow would start sharing tonight. Never call
``date.today()`` in the portal; call ``practice_today()``.
"""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from flask import current_app


def now_utc() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored datetime is UTC, so re-attach it."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def practice_zone() -> ZoneInfo:
    """The practice's time zone (``PORTAL_TIMEZONE``, checked when the app starts)."""
    return ZoneInfo(current_app.config["PORTAL_TIMEZONE"])


def practice_today() -> date:
    """Today's date at the practice."""
    return now_utc().astimezone(practice_zone()).date()


def practice_date(value: datetime) -> date:
    """The practice's calendar date of a stored instant."""
    return as_utc(value).astimezone(practice_zone()).date()


def practice_to_utc(wall_clock: datetime) -> datetime:
    """A naive date-time typed in a form, read as the practice's wall clock, as UTC."""
    return wall_clock.replace(tzinfo=practice_zone()).astimezone(UTC)


def practice_day_start(day: date) -> datetime:
    """Midnight at the practice on ``day``, as an aware UTC datetime (ranges of days are practice days)."""
    return datetime.combine(day, time(), tzinfo=practice_zone()).astimezone(UTC)
