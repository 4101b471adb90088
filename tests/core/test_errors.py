"""Friendly error pages, JSON under the API prefix, and no stack traces."""

from portal.core.permissions import public
from tests.conftest import migrated_app


def test_404_is_friendly(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404 and b"Page not found" in response.data
    assert b"Traceback" not in response.data


def test_unknown_uuid_and_malformed_id_are_404(client, login_as):
    login_as("admin")
    assert client.get("/admin/organizations/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/admin/organizations/not-a-uuid").status_code == 404


def test_405_is_friendly(client):
    response = client.get("/auth/logout")
    assert response.status_code == 405 and b"isn&#39;t allowed" in response.data


def test_413_is_friendly(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    response = client.post("/auth/login", data={"email": "a@example.com", "password": "x" * 4096})
    assert response.status_code == 413 and b"too large" in response.data


def test_api_prefix_answers_json(client):
    response = client.get("/api/nothing-here")
    assert response.status_code == 404 and response.is_json
    assert response.json["error"]["status"] == 404


def test_500_shows_no_trace_or_detail(tmp_path, caplog):
    app = migrated_app(f"sqlite:///{tmp_path / 'boom.db'}", tmp_path)

    @app.get("/boom")
    @public
    def boom():
        raise RuntimeError("secret detail")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert b"Something went wrong" in response.data
    assert b"secret detail" not in response.data and b"Traceback" not in response.data


def _app_raising(tmp_path, exc):
    app = migrated_app(f"sqlite:///{tmp_path / 'busy.db'}", tmp_path)

    @app.get("/busy")
    @public
    def busy():
        raise exc

    @app.get("/fhir/busy")
    @public
    def fhir_busy():
        raise exc

    return app


def _locked():
    import sqlite3

    from sqlalchemy.exc import OperationalError

    return OperationalError("UPDATE referrals ...", {}, sqlite3.OperationalError("database is locked"))


def test_a_lost_race_for_the_database_is_a_503_to_retry_not_a_500(tmp_path):
    app = _app_raising(tmp_path, _locked())
    response = app.test_client().get("/busy")
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert b"The portal is busy" in response.data and b"try again" in response.data
    assert b"UPDATE referrals" not in response.data and b"Traceback" not in response.data
    fhir = app.test_client().get("/fhir/busy")
    assert fhir.status_code == 503 and fhir.json["resourceType"] == "OperationOutcome"


def test_a_postgresql_deadlock_is_a_503_too_and_other_database_errors_stay_500(tmp_path):
    from sqlalchemy.exc import IntegrityError, OperationalError

    class Deadlock(Exception):
        sqlstate = "40P01"

    assert _app_raising(tmp_path, OperationalError("x", {}, Deadlock())).test_client().get("/busy").status_code == 503
    other = IntegrityError("INSERT ...", {}, Exception("duplicate key"))
    assert _app_raising(tmp_path, other).test_client().get("/busy").status_code == 500
