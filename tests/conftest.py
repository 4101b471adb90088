"""Fixtures: app (migrated test database), db (rolled back per test), client, login_as.

The database is SQLite unless TEST_DATABASE_URL names another (PostgreSQL in CI): the
README's test command runs the whole suite once per database.
"""

import contextvars
import os
import secrets
import shutil
import uuid
from pathlib import Path

import pytest
from flask import has_app_context
from flask.testing import FlaskClient
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from portal import create_app
from portal.core.permissions import Role
from portal.extensions import db as _db
from tests import factories

# Property tests: `make test` and CI must not pass or fail by luck, so the default profile
# draws the same examples every run. HYPOTHESIS_PROFILE=explore draws fresh ones (and keeps
# failures in .hypothesis/ to replay them first next time).
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

TEST_SECRET = secrets.token_urlsafe(32)
TEST_KEK = secrets.token_urlsafe(32)


def test_config(database_url: str, instance: Path, **overrides) -> dict:
    return {
        "PORTAL_ENV": "test",
        "SECRET_KEY": TEST_SECRET,
        "PHI_KEK": TEST_KEK,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance),
        "ARGON2_PROFILE": "test",
        "RATELIMIT_ENABLED": False,
        "WTF_CSRF_ENABLED": False,
        "SERVER_NAME": None,
        **overrides,
    }


def fresh_database(base_url: str | None, tmp: Path, name: str) -> str:
    """An empty database: a new SQLite file, or a recreated PostgreSQL database."""
    if not base_url:
        return f"sqlite:///{tmp / (name + '.db')}"
    url = make_url(base_url).set(drivername="postgresql+psycopg")
    db_name = f"{url.database}_{name}" if name != "main" else url.database
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    admin.dispose()
    return url.set(database=db_name).render_as_string(hide_password=False)


class IsolatedClient(FlaskClient):
    """Each request gets a fresh app context, g and DB session, as it would in production.

    Without this, a request made while a test holds an app context reuses that
    context's g (Flask-Login's cached user) and session, which hides real bugs.
    """

    def open(self, *args, **kwargs):
        # Buffered: a streamed body (stream_with_context) must finish inside the same context.
        kwargs.setdefault("buffered", True)
        response = contextvars.Context().run(super().open, *args, **kwargs)
        if has_app_context():
            _db.session.expire_all()  # the test sees what the request committed
        return response


def migrated_app(database_url: str, instance: Path, **overrides):
    from flask_migrate import upgrade

    app = create_app(test_config(database_url, instance, **overrides))
    app.test_client_class = IsolatedClient
    with app.app_context():
        upgrade()
    return app


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    return fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp_path_factory.mktemp("db"), "main")


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    app = migrated_app(database_url, tmp_path_factory.mktemp("instance"))
    yield app
    with app.app_context():
        _db.engine.dispose()


@pytest.fixture(autouse=True)
def _limiter_follows_main_app(request):
    """Flask-Limiter keeps its state on one module-level object; a test that builds
    another app re-initialises it, so give it back to the suite's app before each test."""
    if "app" in request.fixturenames:
        from portal.extensions import limiter

        limiter.init_app(request.getfixturevalue("app"))
    yield


@pytest.fixture
def db(app):
    """A session bound to an outer transaction rolled back after the test.

    Requests and services commit as usual; their commits release savepoints inside
    the outer transaction, so nothing outlives the test.
    """
    with app.app_context():
        engines = _db.engines
        engine = engines[None]
        connection = engine.connect()
        outer = connection.begin()
        engines[None] = connection
        _db.session.remove()
        try:
            yield _db
        finally:
            _db.session.remove()
            engines[None] = engine
            outer.rollback()
            connection.close()
            # The rows went with the rollback; their encrypted files go too.
            shutil.rmtree(Path(app.config["UPLOAD_DIR"]), ignore_errors=True)


@pytest.fixture
def client(app, db):
    return app.test_client()


@pytest.fixture
def org_a(db):
    return factories.make_organization("Org A Orthopedics")


@pytest.fixture
def org_b(db):
    return factories.make_organization("Org B Primary Care")


def sign_in(client, email: str, password: str = factories.PASSWORD):
    """Both sign-in steps: a user with an authenticator app (factory staff and admins) also
    gives the next unused code, as a person would. 302 means signed in, or sent to set up."""
    response = client.post("/auth/login", data={"email": email, "password": password})
    if response.status_code == 302 and response.headers["Location"].endswith("/auth/mfa/verify"):
        from portal.accounts.services import find_user_by_email

        code = factories.next_totp_code(find_user_by_email(email))
        response = client.post("/auth/mfa/verify", data={"code": code})
    return response


@pytest.fixture
def login_as(client, org_a):
    """login_as("staff") -> the signed-in user; partner roles belong to org A."""

    def _login(role: str | Role, organization=None, **kwargs):
        role = Role(role)
        user = factories.make_user(role, organization or (org_a if role.is_partner else None), **kwargs)
        response = sign_in(client, user.email)
        assert response.status_code == 302, "test sign-in failed"
        return user

    return _login


@pytest.fixture
def outbox(db):
    """Messages written so far, newest last."""
    from sqlalchemy import select

    from portal.notifications.models import OutboxMessage

    def _messages(recipient: str | None = None):
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if recipient:
            query = query.where(OutboxMessage.recipient == recipient)
        return _db.session.scalars(query).all()

    return _messages


def random_uuid() -> str:
    return str(uuid.uuid4())


class QueryCount:
    """SQL statements the application issued inside a ``with`` block (the test harness's own
    SAVEPOINT bookkeeping excluded)."""

    HARNESS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")

    def __init__(self):
        self.statements: list[str] = []

    def _count(self, conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(self.HARNESS):
            self.statements.append(statement)

    def __enter__(self):
        from sqlalchemy import Engine, event

        self.statements = []
        event.listen(Engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc):
        from sqlalchemy import Engine, event

        event.remove(Engine, "before_cursor_execute", self._count)

    @property
    def n(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries():
    """``with count_queries() as q: client.get(...)``; then ``q.n`` is the number of statements."""
    return QueryCount
