"""One clock for the whole portal: timezone-aware UTC, callable for column defaults."""
from datetime import UTC, datetime


def now_utc() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every stored datetime is UTC, so re-attach it."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
