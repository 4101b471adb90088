"""Queue a message in the outbox; a worker (later) renders and delivers it."""
from portal.extensions import db
from portal.notifications.models import OutboxMessage


def enqueue(recipient: str, template: str, dedupe_key: str | None = None, **context) -> OutboxMessage:
    message = OutboxMessage(recipient=recipient, template=template, context=context,
                            dedupe_key=dedupe_key)
    db.session.add(message)
    return message
