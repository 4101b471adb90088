"""Queue messages in the outbox (honouring preferences), retry dead ones, build digests.

enqueue() adds a row to the caller's session: it commits with the change that caused it
(or vanishes with it). A worker delivers it after commit (portal/notifications/worker.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import func, select

from portal.audit.services import AuditAction, record
from portal.core.time import now_utc
from portal.extensions import db
from portal.notifications.catalog import DIGEST, Category, kind_of
from portal.notifications.models import DeliveryMode, NotificationPreference, OutboxMessage, OutboxState

_STATE_FOR_MODE = {
    DeliveryMode.IMMEDIATELY: OutboxState.PENDING,
    DeliveryMode.DAILY: OutboxState.HELD,
    DeliveryMode.WEEKLY: OutboxState.HELD,
    DeliveryMode.OFF: OutboxState.SKIPPED,
}


def enqueue(recipient: str, template: str, dedupe_key: str | None = None, **context) -> OutboxMessage:
    """Queue one e-mail. Security notices always go; others follow the recipient's choice.

    With a dedupe_key already used, the existing row is returned and nothing is added.
    """
    kind = kind_of(template)
    if dedupe_key is not None:
        existing = db.session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    mode = delivery_mode(recipient, kind.category) if kind.category else DeliveryMode.IMMEDIATELY
    message = OutboxMessage(
        recipient=recipient,
        template=template,
        context=context,
        dedupe_key=dedupe_key,
        state=_STATE_FOR_MODE[mode],
        digest_period=mode if mode in (DeliveryMode.DAILY, DeliveryMode.WEEKLY) else None,
    )
    db.session.add(message)
    return message


# --- preferences -------------------------------------------------------------------------


def delivery_mode(recipient: str, category: Category) -> DeliveryMode:
    # The users table by name: the outbox sits below the accounts feature and must not import it.
    users = db.metadata.tables["users"]
    mode = db.session.scalar(
        select(NotificationPreference.mode)
        .join(users, users.c.id == NotificationPreference.user_id)
        .where(func.lower(users.c.email) == recipient.strip().lower(), NotificationPreference.category == category)
    )
    return mode or DeliveryMode.IMMEDIATELY


def preferences_of(user) -> dict[Category, DeliveryMode]:
    rows = db.session.execute(
        select(NotificationPreference.category, NotificationPreference.mode).where(
            NotificationPreference.user_id == user.id
        )
    ).all()
    chosen = dict(rows)
    return {c: chosen.get(c, DeliveryMode.IMMEDIATELY) for c in Category}


def set_preferences(user, choices: dict[Category, DeliveryMode]) -> None:
    existing = {
        p.category: p
        for p in db.session.scalars(select(NotificationPreference).where(NotificationPreference.user_id == user.id))
    }
    for category, mode in choices.items():
        pref = existing.get(category)
        if pref is None:
            db.session.add(NotificationPreference(user_id=user.id, category=category, mode=mode))
        elif pref.mode != mode:
            pref.mode = mode
    db.session.flush()
    record(
        AuditAction.NOTIFICATION_PREFERENCES_CHANGED,
        actor=user,
        obj=user,
        **{c.value: m.value for c, m in choices.items()},
    )


# --- dead letters ----------------------------------------------------------------------


def retry(actor, message: OutboxMessage) -> None:
    """Send a dead (or backed-off) message again now, with a fresh set of attempts."""
    if message.state not in (OutboxState.DEAD, OutboxState.PENDING):
        raise ValueError("only dead or pending messages can be retried")
    message.state = OutboxState.PENDING
    message.attempts = 0
    message.next_attempt_at = now_utc()
    message.claimed_by = None
    message.claimed_until = None
    db.session.flush()
    record(AuditAction.OUTBOX_RETRIED, actor=actor, obj=message, template=message.template)


# --- digests -----------------------------------------------------------------------------


def held_recipients(period: DeliveryMode) -> list[str]:
    return list(
        db.session.scalars(
            select(OutboxMessage.recipient)
            .where(OutboxMessage.state == OutboxState.HELD, OutboxMessage.digest_period == period)
            .group_by(OutboxMessage.recipient)
            .order_by(OutboxMessage.recipient)
        )
    )


def fold_digest(recipient: str, period: DeliveryMode) -> OutboxMessage | None:
    """Fold one recipient's held messages into one digest e-mail; the held rows become sent.

    The caller commits. Two digest runs at once cannot both fold the same rows: the
    conditional UPDATE claims them, and a short count means another run got there first.
    """
    from portal.notifications.rendering import render_body_text, render_subject

    held = db.session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.recipient == recipient,
            OutboxMessage.state == OutboxState.HELD,
            OutboxMessage.digest_period == period,
        )
        .order_by(OutboxMessage.id)
    ).all()
    if not held:
        return None
    # Each folded message keeps its own words and figures (a monthly summary's numbers, a status), not only its
    # subject; no message carries PHI, so neither does the digest.
    items = [
        {
            "subject": _subject_or_label(render_subject, m),
            "text": _body_or_nothing(render_body_text, m),
            "link": m.context.get("link"),
        }
        for m in held
    ]
    ids = [m.id for m in held]
    digest = OutboxMessage(
        recipient=recipient,
        template=DIGEST,
        context={"period": period.value, "items": items},
        dedupe_key=_digest_key(period, recipient, ids),
    )
    db.session.add(digest)
    db.session.flush()
    T = OutboxMessage.__table__
    folded = db.session.execute(
        T.update()
        .where(T.c.id.in_(ids), T.c.state == OutboxState.HELD.value)
        .values(state=OutboxState.SENT.value, sent_at=now_utc(), digest_id=digest.id)
    ).rowcount
    if folded != len(ids):
        raise DigestConflict(recipient)
    return digest


class DigestConflict(RuntimeError):
    """Another digest run folded some of these messages first; roll back and try again later."""


def _subject_or_label(render_subject, message: OutboxMessage) -> str:
    try:
        return render_subject(message.template, message.context)
    except Exception:  # a bad row must not block everyone else's digest
        return message.template.replace("_", " ").capitalize()


def _body_or_nothing(render_body_text, message: OutboxMessage) -> str:
    try:
        return render_body_text(message.template, message.context)
    except Exception:  # as for the subject: one bad row must not block the digest
        return ""


def _digest_key(period: DeliveryMode, recipient: str, ids: Iterable[int]) -> str:
    digest = hashlib.sha256(f"{recipient}|{','.join(map(str, ids))}".encode()).hexdigest()[:40]
    return f"digest:{period.value}:{digest}"
