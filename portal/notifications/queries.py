"""Outbox listings for the admin page."""
import uuid

from sqlalchemy import func, select

from portal.extensions import db
from portal.notifications.models import OutboxMessage, OutboxState

ADMIN_LIST_LIMIT = 200


def counts_by_state() -> dict[OutboxState, int]:
    rows = db.session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all()
    return {state: dict(rows).get(state, 0) for state in OutboxState}


def messages_in(state: OutboxState, limit: int = ADMIN_LIST_LIMIT) -> list[OutboxMessage]:
    order = OutboxMessage.next_attempt_at if state is OutboxState.PENDING else OutboxMessage.id.desc()
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.state == state)
                                   .order_by(order).limit(limit)))


def get_message_or_404(public_id: uuid.UUID) -> OutboxMessage:
    return db.first_or_404(select(OutboxMessage).where(OutboxMessage.public_id == public_id))
