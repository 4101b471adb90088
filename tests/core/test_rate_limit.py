"""Login throttling with in-memory storage by default and Redis when configured."""

import os
import uuid

import pytest

from tests.conftest import migrated_app


@pytest.fixture
def limited_app(tmp_path, app):
    def _make(**overrides):
        return migrated_app(
            f"sqlite:///{tmp_path / 'rl.db'}",
            tmp_path,
            RATELIMIT_ENABLED=True,
            LOGIN_RATE_LIMIT="3 per minute",
            **overrides,
        )

    return _make


def _hammer(app, n=4):
    client = app.test_client()
    return [
        client.post("/auth/login", data={"email": "x@example.com", "password": "wrong password"}).status_code
        for _ in range(n)
    ]


def test_login_is_throttled_in_memory(limited_app):
    codes = _hammer(limited_app(RATELIMIT_STORAGE_URI="memory://"))
    assert codes == [401, 401, 401, 429]


def test_by_default_the_limit_holds_across_the_workers_of_a_host(limited_app):
    """Two app instances are two gunicorn workers: the counters live in instance/ratelimit.db."""
    first, second = limited_app(), limited_app()
    assert first.config["RATELIMIT_STORAGE_URI"].startswith("portal+sqlite:///")
    assert _hammer(first, 2) + _hammer(second, 2) == [401, 401, 401, 429]


def test_throttled_response_is_friendly(limited_app):
    app = limited_app()
    _hammer(app, 3)
    response = app.test_client().post("/auth/login", data={"email": "x@example.com", "password": "y" * 12})
    assert response.status_code == 429 and b"Too many attempts" in response.data


def _redis_up() -> bool:
    try:
        import redis

        return redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except Exception:
        return False


@pytest.mark.skipif(not _redis_up() and not os.environ.get("CI"), reason="no Redis on 127.0.0.1:6379")
def test_login_is_throttled_in_redis(limited_app):
    import redis

    prefix = f"portal-test-{uuid.uuid4().hex}"
    app = limited_app(RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0", RATELIMIT_KEY_PREFIX=prefix)
    assert _hammer(app) == [401, 401, 401, 429]
    r = redis.Redis(host="127.0.0.1", port=6379)
    keys = r.keys(f"*{prefix}*")
    assert keys, "the counters live in Redis, shared by every worker and host"
    r.delete(*keys)


def test_two_processes_share_one_count(tmp_path):
    """What two gunicorn workers do: each opens the counter file; both see every attempt."""
    from portal.core.ratelimit import SqliteCounterStorage

    uri = f"portal+sqlite://{tmp_path}/ratelimit.db"
    first, second = SqliteCounterStorage(uri), SqliteCounterStorage(uri)
    assert [first.incr("login/1.2.3.4", 60), second.incr("login/1.2.3.4", 60), first.incr("login/1.2.3.4", 60)] == [
        1,
        2,
        3,
    ]
    assert second.get("login/1.2.3.4") == 3 and second.get_expiry("login/1.2.3.4") > 0
    assert [first.incr("over", 0), second.incr("over", 0)] == [1, 1]  # a window that is over starts again
    second.clear("login/1.2.3.4")
    assert first.get("login/1.2.3.4") == 0 and first.check()
