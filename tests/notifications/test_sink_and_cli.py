"""Development: without SMTP_HOST, `flask outbox work` saves .eml files and says so on the console."""

from email import message_from_bytes, policy

import pytest

from portal.notifications.models import OutboxState
from portal.notifications.services import enqueue


@pytest.fixture
def sink_dir(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_HOST", "")
    monkeypatch.setitem(app.config, "OUTBOX_SINK_DIR", str(tmp_path / "outbox"))
    return tmp_path / "outbox"


def test_work_once_writes_eml_files_to_the_sink(app, db, sink_dir):
    m = enqueue("partner@example.com", "update_available", reference="RB-7KQ2M9XA", link="https://p.example/r/1")
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["outbox", "work", "--once"])
    assert result.exit_code == 0, result.output
    assert "1 sent" in result.output
    (eml,) = sink_dir.glob("*.eml")
    assert eml.name == f"{m.public_id}.eml"
    email = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert email["Subject"] == "A new progress update for referral RB-7KQ2M9XA"
    assert email.get_body(("html",)) is not None and email.get_body(("plain",)) is not None
    # The one-line console notice (the CLI runner captures stdout into result.output).
    assert "outbox: e-mail to partner@example.com" in result.output and str(eml) in result.output
    db.session.refresh(m)
    assert m.state is OutboxState.SENT


def test_production_refuses_the_sink(app, db, sink_dir, monkeypatch):
    monkeypatch.setitem(app.config, "PORTAL_ENV", "production")
    result = app.test_cli_runner().invoke(args=["outbox", "work", "--once"])
    assert result.exit_code != 0 and "SMTP_HOST is not set" in result.output


def test_status_counts_states(app, db):
    enqueue("a@example.com", "mfa_reset")
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["outbox", "status"])
    assert "pending: 1" in result.output
