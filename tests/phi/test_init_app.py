"""Starting up: development creates a keyring, production refuses to start without one."""

import secrets

import click
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import FlaskGroup

from portal.core import phi
from portal.core.phi.errors import KeyringError, KeyringMissingError
from portal.core.phi.runtime import RELOAD_CHECK_SECONDS

KEK = secrets.token_urlsafe(32)


def bare_app(tmp_path, env: str, **config) -> Flask:
    app = Flask("phi_test", instance_path=str(tmp_path / "instance"))
    app.config.update(
        {
            "PORTAL_ENV": env,
            "PHI_KEK": KEK,
            "PHI_KEYRING_PATH": str(tmp_path / "keyring.bin"),
            "UPLOAD_DIR": str(tmp_path / "uploads"),
            **config,
        }
    )
    return app


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_creates_then_reuses_a_keyring(tmp_path, env):
    first = phi.init_app(bare_app(tmp_path, env)).keyring
    assert (tmp_path / "keyring.bin").is_file()
    again = phi.init_app(bare_app(tmp_path, env)).keyring
    assert [k.material for k in again.keys] == [k.material for k in first.keys]


def test_production_refuses_to_start_without_keyring(tmp_path):
    with pytest.raises(KeyringMissingError, match="flask phi init-keyring"):
        phi.init_app(bare_app(tmp_path, "production"))
    assert not (tmp_path / "keyring.bin").exists()


def test_production_refuses_a_passphrase_kek(tmp_path):
    with pytest.raises(KeyringError, match="URL-safe base64"):
        phi.init_app(bare_app(tmp_path, "production", PHI_KEK="correct horse battery staple"))


def test_production_operator_can_run_init_keyring(tmp_path):
    cli = FlaskGroup(create_app=lambda: _app_with_phi(tmp_path))
    runner = CliRunner()
    out = runner.invoke(cli, ["phi", "status"])
    assert out.exit_code != 0 and "flask phi init-keyring" in out.output
    out = runner.invoke(cli, ["phi", "init-keyring"])
    assert out.exit_code == 0, out.output
    assert "Back it up now" in out.output
    assert phi.init_app(bare_app(tmp_path, "production")).keyring.active("data").id == 1


def _app_with_phi(tmp_path) -> Flask:
    app = bare_app(tmp_path, "production")
    assert click.get_current_context(silent=True) is not None  # created by the CLI
    phi.init_app(app)
    return app


def test_other_process_changes_are_picked_up(tmp_path, monkeypatch):
    from portal.core.phi import keyfile

    state = phi.init_app(bare_app(tmp_path, "development"))
    other = phi.init_app(bare_app(tmp_path, "development"))
    keyring, key = other.keyring.with_new_key("data")
    keyfile.save(other.path, other.kek, keyring.promoted(key.id))
    assert state.reload_if_changed() is True
    assert state.keyring.active("data").id == key.id
    assert RELOAD_CHECK_SECONDS <= 60
