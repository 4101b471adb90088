"""Template filters: dates and times in the practice's time zone, plain-language ages."""

from datetime import date, datetime

from flask import Flask, current_app, request, url_for

from portal.core.time import now_utc, practice_zone


def local_datetime(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(practice_zone()).strftime("%b %-d, %Y %-I:%M %p")


def local_date(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(practice_zone()).date()
    return value.strftime("%b %-d, %Y")


def iso_datetime(value: datetime | None) -> str:
    return value.astimezone(practice_zone()).isoformat(timespec="minutes") if value else ""


def days_ago(value: datetime | None) -> str:
    if value is None:
        return ""
    days = (now_utc() - value).days
    return "today" if days <= 0 else ("yesterday" if days == 1 else f"{days} days ago")


def capped(value: int) -> str:
    """A count made with COUNT_CAP (core/paging.py): "1,000+" beyond it."""
    from portal.core.paging import COUNT_CAP

    return f"{COUNT_CAP:,}+" if value > COUNT_CAP else f"{value:,}"


_URL_SHAPES: dict[tuple, str] = {}


def row_url(endpoint: str, **ids) -> str:
    """url_for for the links of a long list, whose values are ids (UUIDs): the endpoint's address is
    built once per shape, with placeholders, and then filled in (url_for costs ~20 us a call)."""
    key = (current_app.name, request.script_root, endpoint, tuple(sorted(ids)))
    shape = _URL_SHAPES.get(key)
    if shape is None:
        shape = _URL_SHAPES[key] = url_for(endpoint, **{name: f"{{{name}}}" for name in ids})
        shape = _URL_SHAPES[key] = shape.replace("%7B", "{").replace("%7D", "}")
    return shape.format(**{name: str(value) for name, value in ids.items()})


def register_filters(app: Flask) -> None:
    from portal.core.paging import page_url

    app.jinja_env.globals["page_url"] = page_url
    app.jinja_env.globals["row_url"] = row_url
    app.add_template_filter(local_datetime, "local_datetime")
    app.add_template_filter(local_date, "local_date")
    app.add_template_filter(iso_datetime, "iso_datetime")
    app.add_template_filter(days_ago, "days_ago")
    app.add_template_filter(capped, "capped")
