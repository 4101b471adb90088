"""An SMTP server that cannot be reached is a failed attempt: counted, with its reason, backed off;
and `flask outbox work --once` exits non-zero when nothing could be delivered, so cron and the
monitoring see the outage."""

from datetime import timedelta

from sqlalchemy import select, update

from portal.core.time import now_utc
from portal.notifications.models import OutboxMessage, OutboxState
from portal.notifications.services import enqueue
from portal.notifications.transports import SmtpTransport
from portal.notifications.worker import Policy, Worker
from tests.notifications.conftest import SmtpServer, free_port

POLICY = Policy(max_attempts=3, backoff_seconds=60, backoff_max_seconds=3600, lease_seconds=60, batch_size=10)


def _queue(db, n: int) -> list[OutboxMessage]:
    messages = [
        enqueue(f"person{i}@example.com", "password_reset", link=f"https://p.example/l/{i}", minutes=60)
        for i in range(n)
    ]
    db.session.commit()
    return messages


def _make_due(db) -> None:
    db.session.execute(update(OutboxMessage).values(next_attempt_at=now_utc() - timedelta(seconds=1)))
    db.session.commit()


def test_a_refused_connection_counts_an_attempt_for_every_claimed_message_and_backs_off(db):
    messages = _queue(db, 3)
    port = free_port()  # nothing listens here
    before = now_utc()
    result = Worker(SmtpTransport("127.0.0.1", port, security="none", timeout=1), POLICY).run(once=True)
    assert result.unavailable == "ConnectionRefusedError" and (result.sent, result.retried) == (0, 3)
    for message in messages:
        db.session.refresh(message)
        assert (message.state, message.attempts, message.claimed_by) == (OutboxState.PENDING, 1, None)
        assert message.last_error == "unavailable: ConnectionRefusedError"
        assert message.next_attempt_at >= before + timedelta(seconds=30)  # back-off: half of 60 s at least

    assert Worker(SmtpTransport("127.0.0.1", port, security="none", timeout=1), POLICY).run(once=True).claimed == 0

    _make_due(db)  # the back-off has passed; still down: the third failure makes dead letters
    for _ in range(2):
        Worker(SmtpTransport("127.0.0.1", port, security="none", timeout=1), POLICY).run(once=True)
        _make_due(db)
    states = db.session.scalars(select(OutboxMessage.state)).all()
    assert states == [OutboxState.DEAD] * 3


def test_after_the_outage_the_messages_go_once_their_back_off_has_passed(db):
    messages = _queue(db, 2)
    port = free_port()
    Worker(SmtpTransport("127.0.0.1", port, security="none", timeout=1), POLICY).run(once=True)
    server = SmtpServer()
    server.port = server.controller.port = port
    server.start()
    try:
        _make_due(db)
        assert Worker(server.transport(), POLICY).run(once=True).sent == 2
    finally:
        server.stop()
    for message in messages:
        db.session.refresh(message)
        assert (message.state, message.attempts) == (OutboxState.SENT, 2) and message.last_error is None


def test_work_once_exits_non_zero_when_the_server_is_unreachable(app, db, monkeypatch):
    _queue(db, 2)
    for key, value in {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": free_port(),
        "SMTP_SECURITY": "none",
        "SMTP_TIMEOUT": 1,
    }.items():
        monkeypatch.setitem(app.config, key, value)
    result = app.test_cli_runner().invoke(args=["outbox", "work", "--once"])
    assert result.exit_code != 0, result.output
    assert "nothing delivered" in result.output and "0 sent, 2 to retry" in result.output
    assert db.session.scalars(select(OutboxMessage.attempts)).all() == [1, 1]


def test_work_once_exits_zero_when_it_delivered(app, db, monkeypatch, smtp_server):
    _queue(db, 1)
    for key, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": smtp_server.port, "SMTP_SECURITY": "none"}.items():
        monkeypatch.setitem(app.config, key, value)
    result = app.test_cli_runner().invoke(args=["outbox", "work", "--once"])
    assert result.exit_code == 0 and "1 sent" in result.output, result.output
