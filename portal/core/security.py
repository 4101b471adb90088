"""Response headers that every page carries, and no-store for anything signed in."""
from flask import Flask, abort, request
from flask_login import current_user

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
        # Any page seen by a signed-in user may hold PHI: keep it out of every cache.
        if request.endpoint != "static" and (
            current_user.is_authenticated or response.status_code >= 400
        ):
            headers["Cache-Control"] = "no-store"
            headers["Pragma"] = "no-cache"
        return response


def register_input_guard(app: Flask) -> None:
    """Refuse NUL characters anywhere in a request's text with a clear 400.

    No field of this portal can hold one, and PostgreSQL rejects NUL in text outright, so
    letting it through turns typing noise into a server error deep inside a query.
    Uploaded files are bytes and are not checked here.
    """

    @app.before_request
    def refuse_nul_characters():
        if request.endpoint == "static":
            return None
        raw_query = request.query_string.decode("latin-1").lower()
        decoded = [*request.args.values(), *request.form.values(), *request.form.keys()]
        json_nul = request.is_json and "\\u0000" in request.get_data(as_text=True)
        if "%00" in raw_query or json_nul or any("\x00" in text for text in decoded):
            abort(400, "Your input contains a NUL character, which cannot be stored. Please remove it and try again.")
        return None
