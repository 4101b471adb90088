"""The worker against a real SMTP server on loopback: success, refusals, time-outs, drops, outages."""

import random
from datetime import timedelta

import pytest
from sqlalchemy import update

from portal.core.time import now_utc
from portal.notifications.models import OutboxMessage, OutboxState
from portal.notifications.services import enqueue
from portal.notifications.transports import SmtpTransport
from portal.notifications.worker import Policy, Worker
from tests.notifications.conftest import free_port


def queue(db, n=1, template="password_reset"):
    messages = [
        enqueue(f"person{i}@example.com", template, link=f"https://portal.example/l/{i}", minutes=60) for i in range(n)
    ]
    db.session.commit()
    return messages


def make_due(db):
    """Skip the back-off: every pending message is due now."""
    db.session.execute(update(OutboxMessage).values(next_attempt_at=now_utc() - timedelta(seconds=1)))
    db.session.commit()


def test_delivers_multipart_text_and_html(db, smtp_server, fast_policy):
    (message,) = queue(db)
    result = Worker(smtp_server.transport(), fast_policy).run(once=True)
    assert (result.sent, result.retried, result.dead) == (1, 0, 0)
    (email,) = smtp_server.mailbox.messages
    assert email["To"] == "person0@example.com"
    assert email["Subject"] == "Set a new password for the Riverbend Physical Therapy partner portal"
    assert email["Message-ID"] == f"<{message.public_id}@riverbend-pt.example>"
    assert email.get_content_type() == "multipart/alternative"
    text = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()
    assert "https://portal.example/l/0" in text and 'href="https://portal.example/l/0"' in html
    db.session.refresh(message)
    assert message.state is OutboxState.SENT and message.sent_at is not None and message.attempts == 1
    assert message.claimed_by is None and message.claimed_until is None


def test_permanent_refusal_is_dead_lettered_at_once(db, smtp_server, fast_policy):
    smtp_server.mailbox.mode = "refuse_5xx"
    (message,) = queue(db)
    result = Worker(smtp_server.transport(), fast_policy).run(once=True)
    assert result.dead == 1
    db.session.refresh(message)
    assert message.state is OutboxState.DEAD and message.attempts == 1
    assert message.last_error.startswith("550")


def test_rejected_content_is_dead_lettered(db, smtp_server, fast_policy):
    smtp_server.mailbox.mode = "reject_data"
    (message,) = queue(db)
    Worker(smtp_server.transport(), fast_policy).run(once=True)
    db.session.refresh(message)
    assert message.state is OutboxState.DEAD and message.last_error.startswith("554")


def test_temporary_refusal_backs_off_then_dead_letters_after_max_attempts(db, smtp_server, fast_policy):
    smtp_server.mailbox.mode = "refuse_4xx"
    (message,) = queue(db)
    worker = Worker(smtp_server.transport(), fast_policy, rng=random.Random(7))
    before = now_utc()
    worker.run(once=True)
    db.session.refresh(message)
    assert message.state is OutboxState.PENDING and message.attempts == 1
    assert message.last_error.startswith("451")
    # First back-off: 60 s with equal jitter, so between 30 and 60 s from now.
    wait = (message.next_attempt_at - before).total_seconds()
    assert 30 <= wait <= 61
    # Not due yet: another pass does nothing.
    assert worker.run(once=True).claimed == 0
    for _ in range(fast_policy.max_attempts - 1):
        make_due(db)
        worker.run(once=True)
    db.session.refresh(message)
    assert message.state is OutboxState.DEAD and message.attempts == fast_policy.max_attempts


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    policy = Policy(backoff_seconds=30, backoff_max_seconds=3600)
    rng = random.Random(1)
    for attempts, full in [(1, 30), (2, 60), (3, 120), (4, 240), (10, 3600), (30, 3600)]:
        waits = [policy.backoff(attempts, rng).total_seconds() for _ in range(50)]
        assert all(full / 2 <= w <= full for w in waits)
        assert len(set(waits)) > 1  # jitter: not all the same


def test_time_out_is_retried_later(db, smtp_server, fast_policy):
    smtp_server.mailbox.mode = "slow"
    smtp_server.mailbox.slow_seconds = 2
    (message,) = queue(db)
    result = Worker(smtp_server.transport(timeout=0.5), fast_policy).run(once=True)
    assert result.retried == 1
    db.session.refresh(message)
    assert message.state is OutboxState.PENDING and message.attempts == 1
    assert message.last_error in ("TimeoutError", "SMTPServerDisconnected")
    smtp_server.mailbox.mode = "accept"
    make_due(db)
    assert Worker(smtp_server.transport(), fast_policy).run(once=True).sent == 1


def test_dropped_connection_is_retried_and_the_rest_of_the_batch_still_goes(db, smtp_server, fast_policy):
    first, second = queue(db, 2)
    mailbox = smtp_server.mailbox
    mailbox.mode = "drop"

    class DropOnce(SmtpTransport):
        def send(self, message):
            try:
                super().send(message)
            finally:
                mailbox.mode = "accept"

    transport = DropOnce("127.0.0.1", smtp_server.port, security="none", timeout=2)
    result = Worker(transport, fast_policy).run(once=True)
    assert (result.sent, result.retried) == (1, 1)
    db.session.refresh(first)
    db.session.refresh(second)
    assert first.state is OutboxState.PENDING and first.last_error == "SMTPServerDisconnected"
    assert second.state is OutboxState.SENT


def test_server_down_is_a_failed_attempt_then_the_messages_go_after_their_back_off(db, fast_policy):
    """Issue 19: an unreachable server counts an attempt (with last_error and back-off) for every
    claimed message, so an outage shows in /admin/outbox and the metrics (docs/operations.md)."""
    messages = queue(db, 3)
    port = free_port()  # nothing listens here yet
    result = Worker(SmtpTransport("127.0.0.1", port, security="none", timeout=1), fast_policy).run(once=True)
    assert result.unavailable and result.sent == 0 and result.retried == 3
    for m in messages:
        db.session.refresh(m)
        assert (m.state, m.attempts, m.claimed_by) == (OutboxState.PENDING, 1, None)
        assert m.last_error == "unavailable: ConnectionRefusedError"
    make_due(db)

    from tests.notifications.conftest import SmtpServer

    server = SmtpServer()
    server.port = port
    server.controller.port = port
    server.start()
    try:
        assert Worker(server.transport(), fast_policy).run(once=True).sent == 3
        assert len(server.mailbox.messages) == 3
    finally:
        server.stop()


def test_a_killed_workers_lease_expires_and_another_worker_delivers(db, smtp_server, fast_policy):
    (message,) = queue(db)
    killed = Worker(smtp_server.transport(), fast_policy, name="killed")
    token, claimed = killed.claim()
    assert [c.id for c in claimed] == [message.id]
    other = Worker(smtp_server.transport(), fast_policy, name="other")
    assert other.claim()[1] == []  # leased: nobody else takes it
    later = now_utc() + timedelta(seconds=fast_policy.lease_seconds + 1)
    token2, reclaimed = other.claim(now=later)
    assert [c.id for c in reclaimed] == [message.id]
    # The killed worker coming back to life cannot record an outcome any more.
    assert killed._finish(claimed[0], token, state=OutboxState.SENT.value) is False
    db.session.refresh(message)
    assert message.state is OutboxState.PENDING and message.claimed_by == token2


def test_template_error_is_dead_lettered_not_retried(db, smtp_server, fast_policy):
    message = enqueue("a@example.com", "password_reset", link="https://x.example/")  # no "minutes"
    db.session.commit()
    Worker(smtp_server.transport(), fast_policy).run(once=True)
    db.session.refresh(message)
    assert message.state is OutboxState.DEAD and message.last_error == "template: UndefinedError"
    assert smtp_server.mailbox.messages == []


@pytest.mark.parametrize("security", ["bogus"])
def test_unknown_security_mode_is_refused(security):
    with pytest.raises(ValueError):
        SmtpTransport("127.0.0.1", 25, security=security)


def test_a_database_outage_does_not_kill_the_long_running_worker(db, smtp_server, fast_policy, monkeypatch):
    import threading

    from sqlalchemy.exc import OperationalError

    queue(db)
    worker = Worker(smtp_server.transport(), fast_policy)
    real_claim, calls = worker.claim, []

    def flaky_claim(now=None):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("SELECT", {}, Exception("server closed the connection"))
        return real_claim(now)

    monkeypatch.setattr(worker, "claim", flaky_claim)
    stop = threading.Event()
    totals = worker.run(poll_seconds=0.01, stop=stop, on_batch=lambda r: stop.set() if r.sent else None)
    assert totals.sent == 1 and len(calls) >= 2
