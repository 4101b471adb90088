"""Headers, caching, CSRF and cookies that must hold on every page."""

import re

import pytest

from portal import create_app
from tests import factories
from tests.conftest import TEST_KEK, TEST_SECRET, migrated_app, sign_in


def test_strict_headers_on_every_page(client):
    headers = client.get("/auth/login").headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Strict-Transport-Security"].startswith("max-age=")


def test_signed_in_pages_are_not_cached(client, login_as):
    login_as("staff")
    assert client.get("/staff/").headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/static/css/portal.css").headers.get("Cache-Control", "")


def test_no_inline_script_or_style_in_pages(client, login_as):
    login_as("admin")
    for path in ("/admin/", "/admin/users", "/admin/organizations", "/auth/account"):
        html = client.get(path).data.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert "<style" not in html and " style=" not in html, path
        assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html, path


def test_session_cookie_flags(client, db):
    user = factories.make_user("staff")
    response = sign_in(client, user.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_production_cookies_are_secure(tmp_path):
    common = {
        "INSTANCE_PATH": str(tmp_path),
        "SECRET_KEY": TEST_SECRET,
        "PHI_KEK": TEST_KEK,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
    }
    create_app({**common, "PORTAL_ENV": "test"})  # creates the keyring production insists on
    app = create_app(
        {
            "PORTAL_ENV": "production",
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": TEST_SECRET,
            "PHI_KEK": TEST_KEK,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        }
    )
    assert app.config["SESSION_COOKIE_SECURE"] is True and app.config["SESSION_COOKIE_HTTPONLY"] is True


@pytest.fixture
def csrf_app(tmp_path):
    return migrated_app(f"sqlite:///{tmp_path / 'csrf.db'}", tmp_path, WTF_CSRF_ENABLED=True)


def test_forms_without_csrf_token_are_refused(csrf_app):
    client = csrf_app.test_client()
    response = client.post("/auth/login", data={"email": "a@example.com", "password": "x" * 12})
    assert response.status_code == 400 and b"Please reload the page" in response.data


def test_forms_with_csrf_token_are_accepted(csrf_app):
    client = csrf_app.test_client()
    page = client.get("/auth/login").data.decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post("/auth/login", data={"email": "a@example.com", "password": "x" * 12, "csrf_token": token})
    assert response.status_code == 401 and b"Incorrect e-mail or password" in response.data


def test_development_has_no_hsts_and_plain_cookies(tmp_path):
    app = create_app(
        {
            "PORTAL_ENV": "development",
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": TEST_SECRET,
            "PHI_KEK": TEST_KEK,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'dev.db'}",
        }
    )
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert "Strict-Transport-Security" not in app.test_client().get("/static/favicon.svg").headers


def test_nul_characters_never_reach_a_query(client, login_as, db):
    from sqlalchemy import select

    from portal.partners.models import Organization

    login_as("admin")
    assert client.get("/admin/audit?actor=a%00b").status_code == 200
    assert client.post("/admin/organizations", data={"name": "Bad\x00Name", "kind": "other"}).status_code == 302
    assert db.session.scalar(select(Organization.name).where(Organization.name == "BadName")) == "BadName"
