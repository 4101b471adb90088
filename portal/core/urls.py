"""Absolute links for e-mail and the API, built without needing a request (CLI, workers)."""

from flask import current_app


def external_url(endpoint: str, **values) -> str:
    """PORTAL_BASE_URL + the endpoint's path; query values are appended as usual."""
    adapter = current_app.url_map.bind("portal.invalid")
    return current_app.config["PORTAL_BASE_URL"].rstrip("/") + adapter.build(endpoint, values)


def safe_next_path(path: str | None) -> str | None:
    """Where to go after signing in: only same-site absolute paths, never an open redirect."""
    if path and path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return None
