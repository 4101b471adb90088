"""Outbox listings for the admin page."""

import uuid

from sqlalchemy import func, select

from portal.core.paging import Page, SortKey, paginate
from portal.extensions import db
from portal.notifications.models import OutboxMessage, OutboxState


def counts_by_state() -> dict[OutboxState, int]:
    rows = db.session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all()
    return {state: dict(rows).get(state, 0) for state in OutboxState}


# Waiting messages in the order they go out; every other state newest first.
_NEXT_OUT = (
    SortKey(OutboxMessage.next_attempt_at, lambda m: m.next_attempt_at),
    SortKey(OutboxMessage.id, lambda m: m.id),
)
_NEWEST = (SortKey(OutboxMessage.id, lambda m: m.id, descending=True),)


def messages_in(state: OutboxState, *, cursor: str | None = None, param: str = "cursor") -> Page[OutboxMessage]:
    keys = _NEXT_OUT if state is OutboxState.PENDING else _NEWEST
    return paginate(
        select(OutboxMessage).where(OutboxMessage.state == state),
        keys,
        listing=f"outbox:{state.value}",
        cursor=cursor,
        param=param,
        count=False,
    )


def get_message_or_404(public_id: uuid.UUID) -> OutboxMessage:
    return db.first_or_404(select(OutboxMessage).where(OutboxMessage.public_id == public_id))
