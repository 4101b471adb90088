"""Keyset paging: a list page costs the same on page 1 and page 4,000, and never shows a row
twice or skips one while others change the list.

A listing orders by a few sort keys ending in a unique one (the id). A page is "the next
``per_page`` rows after (or before) this row's sort values": one indexed range scan, not an
OFFSET that reads and throws away every earlier row. The position travels in an opaque,
signed ``cursor`` argument; a damaged or foreign cursor is a 400 with a plain message.
Totals are counted only up to ``COUNT_CAP`` ("1,000+"), so a count never grows with the table.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any, Generic, TypeVar

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import ColumnElement, Select, and_, func, or_, select, tuple_
from werkzeug.exceptions import BadRequest

from portal.extensions import db

T = TypeVar("T")
DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100
COUNT_CAP = 1000


class BadCursor(BadRequest):
    description = "This page link is out of date or damaged. Go back to the first page of the list."


@dataclass(frozen=True)
class SortKey:
    """One sort key of a listing: the SQL expression, its direction, and its value on a loaded row."""

    expression: ColumnElement
    value: Callable[[Any], Any]
    descending: bool = False


@dataclass
class Page(Generic[T]):
    items: list[T]
    per_page: int
    next_cursor: str | None = None
    previous_cursor: str | None = None
    total: int | None = None  # None when not counted
    total_capped: bool = False  # True: there are more than COUNT_CAP
    param: str = "cursor"  # the query argument that carries this list's position (two lists, two names)

    @property
    def total_label(self) -> str | None:
        if self.total is None:
            return None
        return f"{COUNT_CAP:,}+" if self.total_capped else f"{self.total:,}"

    @property
    def is_first(self) -> bool:
        return self.previous_cursor is None


# --- cursors ---------------------------------------------------------------------------------


def _serializer(listing: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="page-cursor:" + listing)


def _encode_value(value: Any) -> list:
    if value is None:
        return ["n"]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, float):
        return ["f", value]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    if isinstance(value, uuid.UUID):
        return ["u", str(value)]
    return ["s", str(value)]


def _decode_value(item: list) -> Any:
    kind = item[0]
    if kind == "n":
        return None
    raw = item[1]
    return {
        "b": bool,
        "i": int,
        "f": float,
        "t": datetime.fromisoformat,
        "d": date.fromisoformat,
        "u": uuid.UUID,
        "s": str,
    }[kind](raw)


def make_cursor(listing: str, direction: str, values: Sequence[Any]) -> str:
    return _serializer(listing).dumps([direction, [_encode_value(v) for v in values]])


def read_cursor(listing: str, cursor: str, keys: int) -> tuple[str, list[Any]]:
    """(direction, sort values) of a cursor; BadCursor if it was not made for this listing."""
    try:
        direction, raw = _serializer(listing).loads(cursor)
        values = [_decode_value(item) for item in raw]
    except (BadSignature, ValueError, TypeError, KeyError, IndexError):
        raise BadCursor() from None
    if direction not in ("after", "before") or len(values) != keys:
        raise BadCursor()
    return direction, values


# --- queries ---------------------------------------------------------------------------------


def _beyond(keys: Sequence[SortKey], values: Sequence[Any], forward: bool) -> ColumnElement[bool]:
    """Rows strictly after (forward) or before the position ``values`` in the listing's order."""

    def later(key: SortKey, value: Any) -> ColumnElement[bool]:
        return key.expression < value if key.descending == forward else key.expression > value

    if len({k.descending for k in keys}) == 1:  # one direction: a row-value comparison the index serves
        exprs, vals = tuple_(*(k.expression for k in keys)), tuple_(*values)
        return exprs < vals if keys[0].descending == forward else exprs > vals
    clauses = []
    for i, key in enumerate(keys):
        equal_before = [k.expression == v for k, v in zip(keys[:i], values[:i], strict=True)]
        clauses.append(and_(*equal_before, later(key, value=values[i])))
    return or_(*clauses)


def _ordered(keys: Sequence[SortKey], forward: bool) -> list:
    return [k.expression.desc() if k.descending == forward else k.expression.asc() for k in keys]


def per_page_arg(default: int = DEFAULT_PER_PAGE) -> int:
    try:
        return max(1, min(MAX_PER_PAGE, int(request.args.get("per_page", default))))
    except ValueError:
        return default


def paginate(
    query: Select,
    keys: Sequence[SortKey],
    *,
    listing: str,
    cursor: str | None = None,
    per_page: int = DEFAULT_PER_PAGE,
    count: bool | Select = True,
    scalars: bool = True,
    param: str = "cursor",
) -> Page:
    """One page of ``query`` (which must not be ordered or limited yet) in the order of ``keys``.

    ``listing`` names the list (e.g. the endpoint): a cursor made for one list is refused by
    another. ``count`` adds the total, counted up to COUNT_CAP, of ``query`` or of the select
    given (the same rows without the joins that only add columns: cheaper). Two statements at most.
    """
    forward, values = True, None
    if cursor:
        direction, values = read_cursor(listing, cursor, len(keys))
        forward = direction == "after"
    paged = query.order_by(None).order_by(*_ordered(keys, forward)).limit(per_page + 1)
    if values is not None:
        paged = paged.where(_beyond(keys, values, forward))
    result = db.session.execute(paged)
    rows = list(result.unique().scalars() if scalars else result)
    more = len(rows) > per_page
    rows = rows[:per_page]
    if not forward:
        rows.reverse()
    page = Page(items=rows, per_page=per_page, param=param)
    if rows:
        first, last = [k.value(rows[0]) for k in keys], [k.value(rows[-1]) for k in keys]
        has_next = more if forward else values is not None
        has_previous = (values is not None) if forward else more
        page.next_cursor = make_cursor(listing, "after", last) if has_next else None
        page.previous_cursor = make_cursor(listing, "before", first) if has_previous else None
    if count is not False:
        counted = query if count is True else count
        capped = counted.order_by(None).limit(COUNT_CAP + 1).subquery()
        total = db.session.scalar(select(func.count()).select_from(capped))
        page.total, page.total_capped = min(total, COUNT_CAP), total > COUNT_CAP
    return page


def cursor_arg(param: str = "cursor") -> str | None:
    value = request.args.get(param, "")
    return value or None


def page_url(cursor: str | None, param: str = "cursor") -> str:
    """This page's address with another cursor, keeping its filters (for the pager's links)."""
    from flask import url_for

    args = {k: v for k, v in request.args.items(multi=False) if k != param}
    if cursor:
        args[param] = cursor
    return url_for(request.endpoint, **(request.view_args or {}), **args)
