"""FHIR R4 search as the API applies it: the request's parameters become SQL conditions, or a 400.

The rules (http://hl7.org/fhir/R4/search.html), and what this server does with each:

- A parameter's values separated by commas are OR; a parameter repeated is AND. ``\\,``, ``\\|``,
  ``\\$`` and ``\\\\`` escape those characters inside a value.
- An empty parameter (``status=``) is ignored, as the specification says.
- A value that cannot be read (a token with two ``|``, a reference to a type the parameter cannot
  point to, a malformed date) is a 400 OperationOutcome naming the parameter. A value that is well
  formed but matches nothing (an unknown id, another server's reference) is an empty Bundle.
- A parameter the resource does not support is an error under ``Prefer: handling=strict`` (400,
  one issue per parameter) and is ignored otherwise (lenient handling, the default); either way
  only the parameters applied appear in the Bundle's ``self`` link, so a client can see what its
  results were filtered by.
- No modifier (``name:modifier``) is supported: a supported parameter with one is a 400 under
  either handling, since a modifier changes the meaning (the specification: SHALL reject).

Each resource's parameters are declared as ``Param`` tables (``portal/api/fhir/searchparams.py``);
the CapabilityStatement and the OpenAPI description are drawn from the same tables.
"""

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, timezone

from sqlalchemy import ColumnElement, false, or_

DEFAULT_COUNT = 50
MAX_COUNT = 100
MAX_VALUES = 100  # comma-separated values in one parameter
MAX_VALUE_LENGTH = 256
_VALUE = re.compile(
    r"^(?P<prefix>eq|gt|ge|lt|le)?"
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2}))?)?)?$",
    re.ASCII,
)  # ASCII: "\d" must not accept "³" or "٣"
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII)  # FHIR id
_REFERENCE = re.compile(r"^(?:(?P<base>https?://[^\s]+?)/)?(?:(?P<type>[A-Z][A-Za-z]{1,63})/)?(?P<id>[^/]+)$", re.ASCII)
_JSON_FORMATS = {"json", "application/json", "application/fhir+json"}
# Not search parameters but accepted by every search: page size, the opaque page position, output.
CONTROL = ("_count", "_cursor", "_format", "_pretty")


class SearchError(ValueError):
    """A search the server refuses: answered as an OperationOutcome naming the parameter."""

    def __init__(self, parameter: str, message: str, status: int = 400, code: str = "invalid"):
        super().__init__(message)
        self.parameter = parameter
        self.status = status
        self.code = code


# --- values -------------------------------------------------------------------------------------


def _split(value: str, separator: str) -> list[str]:
    """Split on the separator where it is not escaped with a backslash; escapes are kept."""
    parts, current, escaped = [], [], False
    for char in value:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\,|$])", r"\1", value)


def values_of(name: str, raw: str) -> list[str]:
    """The comma-separated values of one occurrence of a parameter (OR), escapes still in; empty ones dropped."""
    values = [v for v in _split(raw, ",") if v != ""]
    if len(values) > MAX_VALUES:
        raise SearchError(name, f"{name} takes at most {MAX_VALUES} values separated by commas.")
    for value in values:
        if len(value) > MAX_VALUE_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise SearchError(name, f"A value of {name} is too long or holds control characters.")
    return values


@dataclass(frozen=True)
class Token:
    """A token value: ``code`` (system None: any system), ``|code`` (system "": none), ``system|code``, or
    ``system|`` (code None: any code of the system)."""

    system: str | None
    code: str | None

    def matches(self, system: str, code: str) -> bool:
        return self.system in (None, system) and self.code in (None, code)


def token(name: str, value: str) -> Token:
    parts = _split(value, "|")
    if len(parts) == 1:
        return Token(None, _unescape(parts[0]))
    if len(parts) != 2 or parts == ["", ""]:
        raise SearchError(name, f"{name} takes a token: code, system|code, |code or system|.")
    system, code = _unescape(parts[0]), _unescape(parts[1])
    return Token(system, code or None)


@dataclass(frozen=True)
class Reference:
    """A reference value: its resource type (None for a bare id) and id; ``uuid`` is None when no id of ours."""

    type: str | None
    id: str
    uuid: uuid.UUID | None
    foreign: bool = False  # an absolute URL of another server: matches nothing here


def parse_uuid(value: str) -> uuid.UUID | None:
    """Ours are UUIDs; another well-formed FHIR id simply matches nothing."""
    try:
        return uuid.UUID(value) if len(value) == 36 else None
    except ValueError:
        return None


def fhir_id(name: str, value: str) -> uuid.UUID | None:
    value = _unescape(value)
    if not _ID.fullmatch(value):
        raise SearchError(name, f"{name} takes resource ids (letters, digits, '-' and '.', at most 64).")
    return parse_uuid(value)


def reference(name: str, value: str, targets: Iterable[str] | None, base: str) -> Reference:
    """``id``, ``Type/id`` or ``[base]/Type/id``. ``targets``: the types the parameter may point to (None: any)."""
    value = _unescape(value)
    match = _REFERENCE.match(value)
    if match is None or not _ID.fullmatch(match["id"]) or (match["base"] and not match["type"]):
        raise SearchError(name, f"{name} takes a reference: an id, Type/id or an absolute URL ending in Type/id.")
    kind = match["type"]
    if kind and targets is not None and kind not in targets:
        raise SearchError(name, f"{name} refers to {' or '.join(sorted(targets))}, not {kind}.")
    foreign = bool(match["base"]) and match["base"].rstrip("/") != base.rstrip("/")
    return Reference(kind, match["id"], parse_uuid(match["id"]), foreign)


def any_of(clauses: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    """OR of the clauses; false when there are none (no value can match)."""
    if not clauses:
        return false()
    return clauses[0] if len(clauses) == 1 else or_(*clauses)


def coded(
    name: str,
    values: list[str],
    codings: list[tuple[str, str, ColumnElement[bool]]],
    allowed: tuple[str, set[str]] | None = None,
) -> ColumnElement[bool]:
    """A token parameter over a fixed list of (system, code, SQL condition) the resources carry.

    ``allowed``: (system, codes) of a required binding: a code of that system outside it is a 400
    (a typo must not look like "no results").
    """
    clauses = []
    for value in values:
        item = token(name, value)
        if allowed and item.system in (None, allowed[0]) and item.code is not None and item.code not in allowed[1]:
            raise SearchError(name, f"{name} takes one of: {', '.join(sorted(allowed[1]))}.")
        clauses += [condition for system, code, condition in codings if item.matches(system, code)]
    return any_of(clauses)


# --- dates --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DateValue:
    prefix: str
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    has_time: bool


def _interval(match: re.Match) -> tuple[datetime, datetime]:
    """The half-open UTC interval [start, end) a value covers at its own precision."""
    year, month, day = int(match["year"]), int(match["month"] or 1), int(match["day"] or 1)
    tz = UTC
    if match["tz"] and match["tz"] != "Z":
        sign = 1 if match["tz"][0] == "+" else -1
        hours, minutes = int(match["tz"][1:3]), int(match["tz"][4:6])
        if hours > 23 or minutes > 59:
            raise ValueError
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    start = datetime(
        year,
        month,
        day,
        int(match["hour"] or 0),
        int(match["minute"] or 0),
        int(match["second"] or 0),
        int((match["fraction"] or "0").ljust(6, "0")[:6]),
        tzinfo=tz,
    )
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
        return start.astimezone(UTC), next_month.astimezone(UTC)
    else:
        return start.astimezone(UTC), datetime(year + 1, 1, 1, tzinfo=tz).astimezone(UTC)
    return start.astimezone(UTC), (start + step).astimezone(UTC)


def date_value(name: str, value: str) -> DateValue:
    match = _VALUE.match(value)
    try:
        if match is None:
            raise ValueError
        start, end = _interval(match)
    except (ValueError, OverflowError):
        raise SearchError(
            name,
            f"{name} takes an optional prefix (eq, gt, ge, lt, le) and a date or a dateTime "
            "with time zone, e.g. gt2026-01-05T10:00:00Z.",
        ) from None
    return DateValue(match["prefix"] or "eq", start, end, bool(match["hour"]))


def instant_filter(name: str, column, values: list[str]) -> ColumnElement[bool]:
    """A date parameter over stored instants: the value's interval compared at its own precision."""
    clauses = []
    for value in values:
        v = date_value(name, value)
        clauses.append(
            {
                "eq": (column >= v.start) & (column < v.end),
                "gt": column >= v.end,
                "ge": column >= v.start,
                "lt": column < v.start,
                "le": column < v.end,
            }[v.prefix]
        )
    return any_of(clauses)


def day_filter(name: str, column, values: list[str], zone) -> ColumnElement[bool]:
    """A date parameter over a stored calendar date (a whole day of the practice, in ``zone``).

    The day is a range, so the prefixes follow R4's range rules: eq: the value's range holds the
    whole day; gt/lt: some of the day lies after/before the value; ge/le: gt/lt or eq. A date-only
    value is compared as calendar dates (neither side has a time zone); a dateTime value is placed
    against the practice's day. With lo = first day starting at or after the value's start and
    hi = the day in which the value's end falls, that is: eq lo <= d < hi, gt d >= hi, lt d < lo,
    ge d >= min(lo, hi), le d < max(lo, hi).
    """
    clauses = []
    for value in values:
        v = date_value(name, value)
        try:
            if v.has_time:
                local_start, local_end = v.start.astimezone(zone), v.end.astimezone(zone)
                lo = local_start.date() + timedelta(days=0 if local_start.time() == time() else 1)
                hi = local_end.date()
            else:
                lo, hi = v.start.date(), v.end.date()
        except (OverflowError, ValueError):  # the first or last day of the calendar, moved out of it
            raise SearchError(name, f"{name} is out of the range of dates.") from None
        clauses.append(
            {
                "eq": (column >= lo) & (column < hi),
                "gt": column >= hi,
                "lt": column < lo,
                "ge": column >= min(lo, hi),
                "le": column < max(lo, hi),
            }[v.prefix]
        )
    return any_of(clauses)


# --- the request --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A search parameter of one resource: how it is advertised and how its values become SQL.

    ``clause(name, values)`` gets one occurrence's comma-separated values (escapes still in) and
    returns their OR as one SQL condition, or raises SearchError.
    """

    name: str
    type: str  # FHIR search parameter type: token, reference, date, number, ...
    documentation: str
    clause: Callable[[str, list[str]], ColumnElement[bool]] = field(compare=False)


@dataclass
class Search:
    clauses: list[ColumnElement[bool]]
    applied: list[tuple[str, str]]  # the parameters applied, in the request's order (self link), without _cursor
    count: int
    cursor: tuple[datetime, uuid.UUID] | None
    cursor_raw: str | None
    pretty: bool

    @property
    def filters(self) -> list[str]:
        return sorted({name for name, _ in self.applied if name not in CONTROL})


def handling_preference(prefer_headers: list[str]) -> str | None:
    """``strict`` or ``lenient`` from ``Prefer: handling=...`` (RFC 7240: the first one counts)."""
    for header in prefer_headers:
        for preference in header.split(","):
            key, _, value = preference.split(";")[0].partition("=")
            if key.strip().lower() == "handling":
                value = value.strip().strip('"').lower()
                return value if value in ("strict", "lenient") else None
    return None


def page_size(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_COUNT
    # Not str.isdigit(): it accepts "³", which int() then rejects.
    if not re.fullmatch(r"[0-9]{1,4}", value) or int(value) > MAX_COUNT:
        raise SearchError("_count", f"_count must be a whole number from 0 to {MAX_COUNT}.")
    return int(value)


def encode_cursor(updated: datetime, public_id: uuid.UUID) -> str:
    raw = json.dumps([updated.isoformat(), str(public_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[datetime, uuid.UUID]:
    try:
        updated, public_id = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        when = datetime.fromisoformat(updated)
        if when.tzinfo is None:
            raise ValueError
        return when, uuid.UUID(public_id)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise SearchError(
            "_cursor", "The _cursor is not one this server issued; follow the Bundle's next link."
        ) from None


def unsupported_issue(kind: str, key: str) -> tuple[str, str]:
    shown = key if len(key) <= 100 else key[:100] + "..."
    return shown, (
        f"{kind} does not support the search parameter {shown!r} on this server; /fhir/metadata lists those it does."
    )


class UnsupportedParameters(Exception):
    """Prefer: handling=strict and parameters this server does not support: (parameter, message) each."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("unsupported search parameters")
        self.problems = problems


def parse(kind: str, params: dict[str, Param], pairs: list[tuple[str, str]], strict: bool) -> Search:
    """Read a search request's query pairs. Raises SearchError (one problem) or UnsupportedParameters."""
    clauses, applied, unsupported = [], [], []
    count, cursor, cursor_raw, pretty = DEFAULT_COUNT, None, None, False
    seen_control = set()
    for key, raw in pairs:
        name, colon, modifier = key.partition(":")
        if name not in params and name not in CONTROL:
            unsupported.append(key)
            continue
        if colon:
            raise SearchError(
                key,
                f"The {name} parameter takes no modifier here (:{modifier[:40]} is not "
                "supported), and a modifier changes what a search means.",
                code="not-supported",
            )
        if name in CONTROL:
            if name in seen_control:
                raise SearchError(name, f"Give {name} once.")
            seen_control.add(name)
        if raw == "":
            continue  # an empty parameter is ignored (R4 search, "Handling errors")
        if name == "_count":
            count = page_size(raw)
        elif name == "_cursor":
            cursor, cursor_raw = decode_cursor(raw), raw
            continue  # the self link carries it, the next link a new one: see views
        elif name == "_format":
            if raw.split(";")[0].strip().lower() not in _JSON_FORMATS:
                raise SearchError(
                    "_format",
                    "This server answers in JSON only (_format json, application/json or application/fhir+json).",
                    status=406,
                    code="not-supported",
                )
        elif name == "_pretty":
            if raw not in ("true", "false"):
                raise SearchError("_pretty", "_pretty takes true or false.")
            pretty = raw == "true"
        else:
            values = values_of(name, raw)
            if not values:
                continue
            clauses.append(params[name].clause(name, values))
        applied.append((key, raw))
    if unsupported and strict:
        raise UnsupportedParameters([unsupported_issue(kind, key) for key in unsupported])
    return Search(clauses, applied, count, cursor, cursor_raw, pretty)
