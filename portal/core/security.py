"""Response headers that every page carries, and no-store for anything signed in."""

from functools import cached_property

from flask import Flask, Request, current_app, g, request, session
from werkzeug.datastructures import ImmutableMultiDict, MultiDict

from portal.core.errors import Forbidden

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


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Called by other servers with bearer tokens or signed assertions, never by a browser with cookies.
MACHINE_PREFIXES = ("/fhir", "/api/")


def is_cross_site() -> bool:
    """Whether a browser says this request comes from another site (Sec-Fetch-Site), or names
    another origin (Origin). Requests that send neither (non-browser clients) are left to the CSRF
    token. Same-site is refused too: a sibling subdomain is not the portal."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    allowed = {request.host_url.rstrip("/"), current_app.config["PORTAL_BASE_URL"].rstrip("/")}
    return origin.rstrip("/") not in allowed


def register_security_headers(app: Flask) -> None:
    hsts = app.config["PORTAL_ENV"] != "development"

    @app.before_request
    def refuse_cross_site_changes():
        """Defence in depth beside the CSRF token: a state-changing request from another site is refused."""
        if request.method in UNSAFE_METHODS and not request.path.startswith(MACHINE_PREFIXES) and is_cross_site():
            raise Forbidden(
                "This form was sent from another site, so nothing was changed. Open the portal directly and try again."
            )

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
