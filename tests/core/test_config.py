"""Configuration precedence and the refusal to run production without secrets."""

import pytest

from portal import create_app
from portal.config import ConfigError


def test_production_refuses_to_start_without_secrets(tmp_path, monkeypatch):
    for key in ("SECRET_KEY", "PHI_KEK", "PORTAL_ENV"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY, PHI_KEK"):
        create_app({"INSTANCE_PATH": str(tmp_path)})
    assert not (tmp_path / "portal.toml").exists()  # nothing generated in production


def test_development_generates_secrets_once(tmp_path, monkeypatch):
    for key in ("SECRET_KEY", "PHI_KEK"):
        monkeypatch.delenv(key, raising=False)
    cfg = {
        "PORTAL_ENV": "development",
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}",
    }
    first = create_app(cfg).config["SECRET_KEY"]
    second = create_app(cfg).config["SECRET_KEY"]
    assert first == second and len(first) >= 40
    assert (tmp_path / "portal.toml").stat().st_mode & 0o777 == 0o600


def test_environment_overrides_instance_file(tmp_path, monkeypatch):
    (tmp_path / "portal.toml").write_text('SECRET_KEY = "from-file"\nPHI_KEK = "k"\nSESSION_IDLE_MINUTES = 30\n')
    monkeypatch.setenv("SESSION_IDLE_MINUTES", "5")
    app = create_app(
        {"PORTAL_ENV": "test", "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}"}
    )
    assert app.config["SECRET_KEY"] == "from-file"
    assert app.config["SESSION_IDLE_MINUTES"] == 5


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"PORTAL_ENV": "staging"}, "PORTAL_ENV"),
        ({"SESSION_IDLE_MINUTES": "soon"}, "SESSION_IDLE_MINUTES"),
        ({"PORTAL_TIMEZONE": "Central Time"}, "PORTAL_TIMEZONE"),
        ({"PORTAL_TIMEZONE": "America"}, "PORTAL_TIMEZONE"),
        ({"PORTAL_TIMEZONE": "../../etc/passwd"}, "PORTAL_TIMEZONE"),
    ],
)
def test_bad_settings_are_named(tmp_path, bad, named):
    with pytest.raises(ConfigError, match=named):
        create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "s", "PHI_KEK": "k", **bad})


def test_postgres_urls_use_psycopg3():
    from portal.config import normalise_database_url

    assert normalise_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"
