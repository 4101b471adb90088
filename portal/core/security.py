"""Response headers that every page carries, and no-store for anything signed in."""

from functools import cached_property

from flask import Flask, Request, g, request, session
from werkzeug.datastructures import ImmutableMultiDict, MultiDict

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def register_security_headers(app: Flask) -> None:
    hsts = app.config["PORTAL_ENV"] != "development"

    @app.after_request
    def set_headers(response):
        headers = response.headers
        headers["Content-Security-Policy"] = CSP
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "no-referrer"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if hsts:
            headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        # Any page seen by a signed-in user may hold PHI: keep it out of every cache. Asked of
        # the cookie and of the user already loaded, never of the database (which may be down).
        if request.endpoint != "static" and (
            getattr(g.get("_login_user"), "is_authenticated", False)
            or session.get("sid")
            or response.status_code >= 400
        ):
            headers["Cache-Control"] = "no-store"
            headers["Pragma"] = "no-cache"
        return response


def _without_nul(values: MultiDict) -> ImmutableMultiDict:
    return ImmutableMultiDict([(k.replace("\x00", ""), v.replace("\x00", "")) for k, v in values.items(multi=True)])


class PortalRequest(Request):
    """Query arguments and form fields arrive without NUL characters.

    No field of the portal can hold one and PostgreSQL rejects NUL in text, so stripping
    it where input is parsed protects every query at once (a NUL in the audit viewer's
    filters used to become a server error). Uploaded files are bytes and are untouched.
    """

    @cached_property
    def args(self) -> ImmutableMultiDict:
        return _without_nul(super().args)

    def _load_form_data(self) -> None:
        super()._load_form_data()
        self.__dict__["form"] = _without_nul(self.__dict__["form"])
