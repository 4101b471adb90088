"""The database goes away under a signed-in user: a plain 503 page with Retry-After, rendered without
loading the user again (the page that failed must not fail a second time into Werkzeug's bare 500),
and /healthz still answers while /readyz says why this host cannot serve."""

import logging

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session


def _database_gone(monkeypatch) -> list[str]:
    """From now on every statement fails as when the server went away (no statement reached it)."""
    attempts = []

    def refused(self, statement, *args, **kwargs):
        attempts.append(str(statement)[:40])
        raise OperationalError(None, {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(Session, "execute", refused)
    return attempts


def test_a_signed_in_page_is_a_503_page_with_retry_after_and_no_second_failure(
    client, db, login_as, monkeypatch, caplog
):
    login_as("partner")
    assert client.get("/partner/").status_code == 200
    attempts = _database_gone(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="portal"):
        response = client.get("/partner/")
    page = response.get_data(as_text=True)
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "briefly unavailable" in page and "Nothing of yours was saved" in page
    assert "Internal Server Error" not in page and "Traceback" not in page
    assert attempts  # the view did try, and the error page did not need the database
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert any("database unavailable" in r.getMessage() for r in caplog.records)


def test_a_form_post_while_the_database_is_gone_is_a_503_too(client, db, login_as, monkeypatch):
    login_as("partner")
    _database_gone(monkeypatch)
    response = client.post("/partner/referrals/new", data={"reason": "anything"})
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert b"briefly unavailable" in response.data


def test_liveness_answers_and_readiness_names_the_database(client, db, monkeypatch):
    _database_gone(monkeypatch)
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert body["checks"]["database"] == {"ok": False, "ms": body["checks"]["database"]["ms"], "error": "unreachable"}
