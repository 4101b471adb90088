"""Response headers that every page carries, and no-store for anything signed in."""
from flask import Flask, request
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
