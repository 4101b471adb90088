"""The portal's errors, and their answers: friendly pages, JSON, or what an API registers.

Services raise a :class:`PortalError` of the right kind; nothing inspects an error's wording.
A view that can show the message beside a form catches :class:`UserError` (its ``status`` is
422, or 409 for a :class:`Conflict`); any other PortalError is answered here, once, with its
status: as a page, as JSON under ``/api/``, or by the renderer an API registered for its prefix
(the FHIR API answers OperationOutcomes). No traces, no PHI.
"""

import errno
from collections.abc import Callable

from flask import Flask, Response, current_app, flash, g, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from limits.errors import StorageError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from portal.core.signals import access_denied
from portal.extensions import db


class PortalError(Exception):
    """A refusal the portal explains to the user: ``message`` is safe to show (never PHI)."""

    status = 500

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field  # the form field the message belongs to, when there is one


class UserError(PortalError):
    """Something the user can put right (a missing reason, a date out of range): 422."""

    status = 422


class Conflict(UserError):
    """Someone else changed it first (a stale version, an update already handled): 409, reload and retry."""

    status = 409


class NotFound(PortalError):
    status = 404


class Forbidden(PortalError):
    status = 403


class Busy(PortalError):
    """The portal cannot do it right now (a lock held too long, a server away): 503, try again."""

    status = 503


class InsufficientStorage(UserError):
    """The disk that would keep it is full (an upload): 507, with the form back to send again later."""

    status = 507


API_PREFIXES = ("/api/", "/fhir/")

MESSAGES = {
    400: ("Something in that request was not right", "Please go back, check the form and try again."),
    401: ("Please sign in", "You need to sign in to see this page."),
    403: ("You don't have access to this page", "If you think you should, ask your administrator."),
    404: ("Page not found", "The page or record you asked for doesn't exist, or you don't have access to it."),
    405: ("That action isn't allowed here", "This address does not accept that kind of request."),
    413: ("That upload is too large", "Please choose a smaller file and try again."),
    507: (
        "The portal's storage is full",
        "Nothing of yours was saved. The practice has been alerted; please try again later.",
    ),
    429: ("Too many attempts", "Please wait a minute before trying again."),
    500: ("Something went wrong on our side", "The error has been logged. Please try again in a moment."),
    503: (
        "The portal is busy",
        "Another change was being saved at the same moment. Nothing of yours was saved: "
        "please try again in a few seconds.",
    ),
}
UNAVAILABLE = (
    "The portal is briefly unavailable",
    "We could not reach the database. Nothing of yours was saved: please try again in a few seconds.",
)
UNAVAILABLE_LIMITS = (
    "The portal is briefly unavailable",
    "We could not check sign-in attempts just now. Nothing of yours was saved: please try again in a few seconds.",
)
STORAGE_FULL = (
    "The portal cannot save right now",
    "Its storage is full. Nothing of yours was saved: please try again later.",
)
RETRY_AFTER_SECONDS = 2
STORAGE_FULL_RETRY_AFTER_SECONDS = 300
# SQLite's primary result code for "database or disk is full" (extended codes keep it in the low byte).
SQLITE_FULL = 13
# OSError numbers that mean "no space left" (ENOSPC) or "over quota" (EDQUOT).
NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def is_transient_database_error(exc: DBAPIError) -> bool:
    """A statement lost a race for the database and may simply be retried: SQLite's single writer
    lock ("database is locked" after the busy timeout), or a PostgreSQL deadlock, serialization
    failure or lock timeout."""
    orig = getattr(exc, "orig", None)
    if type(orig).__module__ == "sqlite3":
        return "database is locked" in str(orig) or "database table is locked" in str(orig)
    return getattr(orig, "sqlstate", None) in ("40001", "40P01", "55P03")


def is_lost_connection(exc: DBAPIError) -> bool:
    """The database went away (restart, network, killed backend: SQLAlchemy invalidated the
    connection) or cannot be reached at all (no statement ran: the connect itself failed)."""
    return bool(exc.connection_invalidated) or (isinstance(exc, OperationalError) and exc.statement is None)


def is_storage_full(exc: DBAPIError) -> bool:
    """The database cannot grow: SQLite's SQLITE_FULL ("database or disk is full", its result code,
    not its text), or PostgreSQL's class 53 "insufficient resources" (disk full, out of memory,
    too many connections). Nothing was stored; it lasts until someone frees space."""
    orig = getattr(exc, "orig", None)
    if type(orig).__module__ == "sqlite3":
        return (getattr(orig, "sqlite_errorcode", 0) or 0) & 0xFF == SQLITE_FULL
    return str(getattr(orig, "sqlstate", None) or "").startswith("53")


def is_out_of_space(exc: BaseException) -> bool:
    """An OSError saying the disk (or the quota) is full."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


def storage_full_response(what: str):
    """503 for a database that cannot grow, 507 for files: a clear page, logged as an error (someone
    must free space), built without touching the database."""
    current_app.logger.error("storage full (%s) on %s %s", what, request.method, request.endpoint)
    if what == "database":
        response = current_app.make_response(error_response(503, *STORAGE_FULL))
    else:
        response = current_app.make_response(error_response(507))
    response.headers["Retry-After"] = str(STORAGE_FULL_RETRY_AFTER_SECONDS)
    return response


def database_failure_response(exc: DBAPIError):
    """The answer when the database refused a statement or a commit: never a bare 500, and built
    without touching the database again (the session has just been rolled back)."""
    if is_storage_full(exc):
        return storage_full_response("database")
    transient, lost = is_transient_database_error(exc), is_lost_connection(exc)
    if transient or lost:
        current_app.logger.warning(
            "database %s on %s %s: %s",
            "unavailable" if lost else "busy",
            request.method,
            request.endpoint,
            type(exc.orig).__name__,
        )
        response = current_app.make_response(error_response(503, *(UNAVAILABLE if lost else ())))
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    current_app.logger.error(
        "database error on %s %s: %s", request.method, request.endpoint, type(exc.orig).__name__, exc_info=exc
    )
    return current_app.make_response(error_response(500))


# An API answers errors under its prefix in its own format (the FHIR API: OperationOutcome).
_RENDERERS: dict[str, Callable[[int, str], Response]] = {}


def register_error_renderer(prefix: str, renderer: Callable[[int, str], Response]) -> None:
    """``renderer(status, diagnostics)`` answers every error under ``prefix`` (and ``prefix`` itself)."""
    _RENDERERS[prefix.rstrip("/")] = renderer


def _renderer_for(path: str):
    for prefix, renderer in _RENDERERS.items():
        if path == prefix or path.startswith(prefix + "/"):
            return renderer
    return None


def wants_json() -> bool:
    return request.path.startswith(API_PREFIXES)


def error_response(code: int, title: str | None = None, detail: str | None = None):
    """An error page, JSON error or an API's own answer. A 5xx never touches the database: its page
    is rendered without the signed-in user's navigation (the database may be what failed)."""
    default_title, text = MESSAGES.get(code, MESSAGES[500] if code >= 500 else MESSAGES[400])
    title = title or default_title
    renderer = _renderer_for(request.path)
    if renderer is not None:
        return renderer(code, detail or f"{title}. {text}")
    if wants_json():
        return jsonify(error={"status": code, "title": title, "detail": detail or text}), code
    if code >= 500:
        _forget_the_user()
    return render_template(
        "errors/error.html", code=code, title=title, text=detail or text, bare_layout=code >= 500
    ), code


def _forget_the_user() -> None:
    """A 5xx page never asks the database (it may be what failed): for the rest of this request the
    user is anonymous, so neither the page's context processors (``can``) nor the after_request
    hooks load the signed-in user's expired row again and fail into Werkzeug's bare 500. Only this
    response is affected; the session cookie, and so the sign-in, are untouched."""
    login_manager = getattr(current_app, "login_manager", None)
    if login_manager is not None:
        g._login_user = login_manager.anonymous_user()


def unauthorized_response():
    if wants_json():
        return error_response(401)
    if g.pop("session_expired", False):
        flash("Your session ended. Please sign in again.", "info")
    elif request.endpoint != "home.index":
        flash("Please sign in to continue.", "info")
    if request.method == "GET":
        session["next"] = request.path  # kept server-side: nothing extra in the URL
    return redirect(url_for("auth.login"))


def register_errorhandlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return error_response(
            400, detail="Your form expired or was sent from elsewhere. Please reload the page and try again."
        )

    @app.errorhandler(PortalError)
    def portal_error(exc: PortalError):
        if exc.status == 403:
            _denied()
        response = current_app.make_response(error_response(exc.status, detail=exc.message))
        if exc.status == 503:
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 403:
            _denied()
        # A description written for the user (e.g. paging's BadCursor) is shown; werkzeug's stock ones are not.
        own = (
            exc.description
            if exc.description != HTTPException.description and type(exc).__module__.startswith("portal.")
            else None
        )
        return error_response(exc.code or 500, detail=own)

    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError):
        db.session.rollback()
        return database_failure_response(exc)

    @app.errorhandler(OSError)
    def os_error(exc: OSError):
        db.session.rollback()
        if is_out_of_space(exc):  # e.g. a request body spooled to a full temporary directory
            return storage_full_response("files")
        return unhandled(exc)

    @app.errorhandler(StorageError)
    def rate_limit_storage_error(exc: StorageError):
        # The rate-limit counters (instance/ratelimit.db or Redis) cannot be read or written: refuse
        # for now rather than let unlimited attempts through, and say so plainly.
        db.session.rollback()
        app.logger.warning("rate-limit storage unavailable on %s %s", request.method, request.endpoint)
        response = current_app.make_response(error_response(503, *UNAVAILABLE_LIMITS))
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.errorhandler(Exception)
    def unhandled(exc: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error on %s %s", request.method, request.endpoint)
        return error_response(InternalServerError.code)


def _denied() -> None:
    """A refusal is a security event: the audit trail hears of it (portal/audit, through a signal)."""
    access_denied.send(
        current_app._get_current_object(),
        actor=current_user if current_user.is_authenticated else None,
        endpoint=request.endpoint or "-",
    )
