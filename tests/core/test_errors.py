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
