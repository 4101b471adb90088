"""A request's unit of work: one transaction that reads or writes, and the writes that must outlive it.

SQLite (WAL) lets many readers work beside one writer, but a transaction that began as a read
cannot become a write once another connection has committed since it began: the upgrade
fails at once with "database is locked", and the busy timeout never helps. So every request
says up front which kind it is, and both databases follow the same rules:

* A **read** (GET, HEAD, OPTIONS) runs in a deferred transaction and never writes in it
  (``before_flush`` refuses it in tests and logs it elsewhere).
* A **write** (any other method) begins with ``BEGIN IMMEDIATE`` on SQLite: it waits its turn
  for the writer lock (busy timeout) before its first statement, so it cannot lose an upgrade
  race. A read that must write after all (an SSO callback, say, after its slow calls to the
  provider) calls :func:`begin_writing` first; so does a write endpoint declared
  :func:`reads_first` because it talks to another server before it writes.
* What a request must record *whatever its outcome* (a PHI read, a refusal, the session's
  last-seen time) is a **side write**: kept in memory, then written after the main
  transaction ends, in a short write transaction of its own, or inside the main one when that
  commits. Records of what a response showed are dropped if the response became a 5xx (the
  user saw nothing); if a side write cannot be stored, the response becomes a 503, so no
  PHI leaves unaudited.

The request commits once, at the end, and only if it answers below 400; what must outlive a
refusal (a failed sign-in's count and record) is a side write. A commit that fails answers with the
portal's own error page: 503 with ``Retry-After`` for a lost lock race or a lost connection.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy import Engine, Executable, Table, event, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from portal.extensions import db

log = logging.getLogger("portal.db")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_READS_FIRST = "_reads_first"
SIDE_WRITE_ATTEMPTS = 3


class Mode(enum.Enum):
    DEFERRED = "deferred"  # outside requests, unless a job says otherwise: SQLite's own BEGIN
    READ = "read"  # a read request: BEGIN, and nothing may be written in it
    WRITE = "write"  # a write request, or a job inside writing(): BEGIN IMMEDIATE on SQLite


_mode: ContextVar[Mode] = ContextVar("portal_transaction_mode", default=Mode.DEFERRED)


def current_mode() -> Mode:
    return _mode.get()


@contextmanager
def writing() -> Iterator[None]:
    """Transactions begun inside this block take SQLite's writer lock up front.

    For background jobs (outbox worker, audit sealer, key rotation, scheduled commands) that
    read and then write beside a running portal: without it, their read snapshot can go stale
    and the write fail at once with "database is locked"."""
    token = _mode.set(Mode.WRITE)
    try:
        yield
    finally:
        _mode.reset(token)


class ReadOnlyRequestError(RuntimeError):
    """A read request tried to write in its read transaction (call begin_writing() first)."""


@dataclass
class _SideWrite:
    table: Table | None
    rows: list[dict] = field(default_factory=list)
    statement: Executable | None = None
    shows_phi: bool = False


@dataclass
class _Unit:
    mode: Mode
    side: list[_SideWrite] = field(default_factory=list)
    finished: bool = False


def reads_first(view: Callable) -> Callable:
    """Start this non-GET endpoint as a read: it calls another server before it writes, and
    must not hold SQLite's writer lock meanwhile. It calls begin_writing() before writing."""
    setattr(view, _READS_FIRST, True)
    return view


def begin_writing() -> None:
    """From here on this request writes: end its read transaction so the next statement
    begins a write transaction (BEGIN IMMEDIATE on SQLite). Objects loaded so far stay usable;
    they reload from the write transaction when next touched."""
    unit = g.get("_unit")
    if unit is None or unit.mode is Mode.WRITE:
        return
    session = db.session
    if _has_changes(session):
        raise ReadOnlyRequestError("begin_writing() must come before the request's first change")
    session.rollback()
    unit.mode = Mode.WRITE
    _mode.set(Mode.WRITE)


def side_insert(table: Table, row: dict, *, shows_phi: bool = False) -> bool:
    """Insert ``row`` whatever the request's outcome; False outside a request (caller adds it)."""
    unit = g.get("_unit") if _in_request() else None
    if unit is None or unit.finished:
        return False
    last = unit.side[-1] if unit.side else None
    if last is not None and last.table is table and last.shows_phi == shows_phi:
        last.rows.append(row)
    else:
        unit.side.append(_SideWrite(table, [row], shows_phi=shows_phi))
    return True


def side_execute(statement: Executable) -> bool:
    """Run ``statement`` (an UPDATE) whatever the request's outcome; False outside a request."""
    unit = g.get("_unit") if _in_request() else None
    if unit is None or unit.finished:
        return False
    unit.side.append(_SideWrite(None, statement=statement))
    return True


def _in_request() -> bool:
    from flask import has_request_context

    return has_request_context()


# --- the request --------------------------------------------------------------------------


def start_request() -> Token:
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    reads = request.method in SAFE_METHODS or getattr(view, _READS_FIRST, False)
    mode = Mode.READ if reads else Mode.WRITE
    g._unit = _Unit(mode)
    return _mode.set(mode)


def end_request(token: Token) -> None:
    _mode.reset(token)


def finish_request(response: Response) -> Response:
    """Commit or roll back the request's transaction, then store its side writes."""
    unit: _Unit | None = g.get("_unit")
    if unit is None or unit.finished:
        return response
    unit.finished = True
    status = response.status_code
    keep = status < 400
    side = [w for w in unit.side if status < 500 or not w.shows_phi]
    session = db.session
    try:
        if unit.mode is Mode.WRITE and keep:
            _apply(session, side)
            session.commit()
            return response
        _discard_reads(session, unit)
        if side:
            _write_alone(session, side)
    except DBAPIError as exc:
        session.rollback()
        from portal.core.errors import database_failure_response

        return database_failure_response(exc)
    return response


def _discard_reads(session: Session, unit: _Unit) -> None:
    if unit.mode is Mode.READ and _has_changes(session):
        _refuse_write_in_read(", ".join(sorted({type(o).__name__ for o in [*session.new, *session.dirty]})))
    session.rollback()


def _has_changes(session: Session) -> bool:
    return bool(session.new or session.deleted or any(session.is_modified(o) for o in session.dirty))


def _apply(session: Session, side: list[_SideWrite]) -> None:
    for write in side:
        if write.table is not None:
            session.execute(insert(write.table), write.rows)
        else:
            session.execute(write.statement)


def _write_alone(session: Session, side: list[_SideWrite]) -> None:
    """Side writes in a short write transaction of their own; a lost lock race is retried."""
    from portal.core.errors import is_transient_database_error

    token = _mode.set(Mode.WRITE)
    try:
        for attempt in range(1, SIDE_WRITE_ATTEMPTS + 1):
            try:
                _apply(session, side)
                session.commit()
                return
            except DBAPIError as exc:
                session.rollback()
                if attempt == SIDE_WRITE_ATTEMPTS or not is_transient_database_error(exc):
                    raise
                log.warning("side write lost a lock race (attempt %d): %s", attempt, type(exc.orig).__name__)
                time.sleep(0.02 * attempt)
    finally:
        _mode.reset(token)


# --- reads stay reads ----------------------------------------------------------------------


def _refuse_write_in_read(what: str) -> None:
    message = (
        f"{request.method} {request.endpoint} wrote {what} in a read transaction: "
        "call portal.core.unit_of_work.begin_writing() first"
    )
    if current_app.testing:
        raise ReadOnlyRequestError(message)
    log.error(message)


@event.listens_for(Engine, "before_cursor_execute")
def _reads_stay_reads(conn, cursor, statement, parameters, context, executemany) -> None:
    """An INSERT, UPDATE or DELETE in a read transaction is a bug (ORM flush or Core alike)."""
    if _mode.get() is Mode.READ and context is not None and (context.isinsert or context.isupdate or context.isdelete):
        table = getattr(getattr(context.compiled, "statement", None), "table", None)
        _refuse_write_in_read(getattr(table, "name", "a table"))


class PortalFlask(Flask):
    """Flask, with the unit of work wrapped around each request's dispatch."""

    def full_dispatch_request(self) -> Response:
        token = start_request()
        try:
            return super().full_dispatch_request()
        finally:
            end_request(token)

    def finalize_request(self, rv: Any, from_error_handler: bool = False) -> Response:
        # Commit before the after_request handlers, so a failed commit still gets headers.
        response = finish_request(self.make_response(rv))
        return super().finalize_request(response, from_error_handler)
