"""The admins' outbox page: dead letters and waiting messages, with a retry button."""

from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.notifications.models import OutboxState
from portal.notifications.services import enqueue


def dead_message(db, **kw):
    m = enqueue("gone@example.com", "checkin_due", organization="Org", link="https://portal.example/o/1", **kw)
    db.session.flush()
    m.state, m.attempts, m.last_error = OutboxState.DEAD, 8, "550 5.1.1 Mailbox unavailable"
    db.session.commit()
    return m


def test_dead_letters_are_listed_without_their_context(client, login_as, db):
    m = dead_message(db)
    login_as("admin")
    html = client.get("/admin/outbox").get_data(as_text=True)
    assert "gone@example.com" in html and "550 5.1.1 Mailbox unavailable" in html
    assert "https://portal.example/o/1" not in html  # links may be bearer tokens: never shown
    assert f"/admin/outbox/{m.public_id}/retry" in html


def test_retry_makes_a_dead_message_pending_again_and_is_audited(client, login_as, db):
    m = dead_message(db)
    admin = login_as("admin")
    response = client.post(f"/admin/outbox/{m.public_id}/retry")
    assert response.status_code == 302
    db.session.refresh(m)
    assert (m.state, m.attempts) == (OutboxState.PENDING, 0)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "outbox.retried"))
    assert event.actor_id == admin.id and event.object_id == str(m.public_id)


def test_sent_messages_cannot_be_retried(client, login_as, db):
    m = dead_message(db)
    m.state = OutboxState.SENT
    db.session.commit()
    login_as("admin")
    client.post(f"/admin/outbox/{m.public_id}/retry")
    db.session.refresh(m)
    assert m.state is OutboxState.SENT
