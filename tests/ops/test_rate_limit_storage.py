"""Rate-limit counters that cannot be reached (Redis away, the counter file on a full disk) answer a
plain 503 with Retry-After, not a 500 and not unlimited attempts."""

from tests.conftest import migrated_app


def test_sign_in_answers_503_when_the_counters_cannot_be_reached(app, tmp_path):
    limited = migrated_app(
        f"sqlite:///{tmp_path / 'rl.db'}",
        tmp_path,
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",  # nothing listens there
    )
    response = limited.test_client().post("/auth/login", data={"email": "x@example.com", "password": "y" * 12})
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert b"could not check sign-in attempts" in response.data
