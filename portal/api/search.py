"""FHIR search parameters the API supports: _lastUpdated (eq, gt, ge, lt, le) and _count."""
import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import ColumnElement

DEFAULT_COUNT = 50
MAX_COUNT = 100
_VALUE = re.compile(
    r"^(?P<prefix>eq|gt|ge|lt|le)?"
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2}))?)?)?$", re.ASCII)  # ASCII: "\d" must not accept "³" or "٣"


class SearchError(ValueError):
    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


def page_size(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_COUNT
    # Not str.isdigit(): it accepts "³", which int() then rejects.
    if not re.fullmatch(r"[0-9]{1,4}", value) or int(value) > MAX_COUNT:
        raise SearchError("_count", f"_count must be a whole number from 0 to {MAX_COUNT}.")
    return int(value)


def _interval(match: re.Match) -> tuple[datetime, datetime]:
    """The half-open UTC interval [start, end) a value covers at its own precision."""
    year, month, day = int(match["year"]), int(match["month"] or 1), int(match["day"] or 1)
    tz = timezone.utc
    if match["tz"] and match["tz"] != "Z":
        sign = 1 if match["tz"][0] == "+" else -1
        hours, minutes = int(match["tz"][1:3]), int(match["tz"][4:6])
        if hours > 23 or minutes > 59:
            raise ValueError
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    start = datetime(year, month, day, int(match["hour"] or 0), int(match["minute"] or 0),
                     int(match["second"] or 0), int((match["fraction"] or "0").ljust(6, "0")[:6]), tzinfo=tz)
    if match["fraction"]:
        step = timedelta(microseconds=1)
    elif match["second"]:
        step = timedelta(seconds=1)
    elif match["hour"]:
        step = timedelta(minutes=1)
    elif match["day"]:
        step = timedelta(days=1)
    elif match["month"]:
        next_month = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
        return start.astimezone(timezone.utc), next_month.astimezone(timezone.utc)
    else:
        return start.astimezone(timezone.utc), datetime(year + 1, 1, 1, tzinfo=tz).astimezone(timezone.utc)
    return start.astimezone(timezone.utc), (start + step).astimezone(timezone.utc)


def last_updated_filter(column, values: list[str]) -> list[ColumnElement[bool]]:
    clauses = []
    for value in values:
        match = _VALUE.match(value or "")
        try:
            if match is None:
                raise ValueError
            start, end = _interval(match)
        except (ValueError, OverflowError):
            raise SearchError("_lastUpdated", "_lastUpdated takes an optional prefix (eq, gt, ge, lt, le) and a date "
                                              "or a dateTime with time zone, e.g. gt2026-01-05T10:00:00Z.") from None
        prefix = match["prefix"] or "eq"
        clauses.append({"eq": (column >= start) & (column < end), "gt": column >= end, "ge": column >= start,
                        "lt": column < start, "le": column < end}[prefix])
    return clauses
