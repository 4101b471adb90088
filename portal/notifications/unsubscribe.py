"""One-click unsubscribe (RFC 8058): a signed link per recipient and category of e-mail.

The link works without signing in: a mail client POSTs "List-Unsubscribe=One-Click" to it, or the person
opens it and confirms with one button. It turns off only the category of the e-mail it came with. The
token names the user by their opaque public id (never the e-mail address) and is signed with the app's
secret key; it does not expire, because an unsubscribe link must keep working in old e-mails.
Links are always built from the configured public address (PORTAL_BASE_URL), never from a request.
"""

import uuid

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select

from portal.audit.services import AuditAction, record
from portal.extensions import db
from portal.notifications.catalog import Category
from portal.notifications.models import DeliveryMode, NotificationPreference

SALT = "notifications.unsubscribe"
PATH = "/unsubscribe/"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _users():
    # The users table by name: the outbox sits below the accounts feature and must not import it.
    return db.metadata.tables["users"]


def unsubscribe_url(recipient: str, category: Category) -> str | None:
    """The one-click link for this recipient and category, or None if no user has that address."""
    users = _users()
    public_id = db.session.scalar(
        select(users.c.public_id).where(func.lower(users.c.email) == recipient.strip().lower())
    )
    if public_id is None:
        return None
    token = _serializer().dumps([str(public_id), category.value])
    return current_app.config["PORTAL_BASE_URL"].rstrip("/") + PATH + token


def read_token(token: str) -> tuple[int, uuid.UUID, Category] | None:
    """(user id, public id, category) for a genuine token of an existing user; None otherwise."""
    try:
        public_id, category = _serializer().loads(token)
        public_id, category = uuid.UUID(public_id), Category(category)
    except (BadSignature, ValueError, TypeError):
        return None
    user_id = db.session.scalar(select(_users().c.id).where(_users().c.public_id == public_id))
    return (user_id, public_id, category) if user_id is not None else None


def turn_off(user_id: int, public_id: uuid.UUID, category: Category) -> bool:
    """Turn one category off for one user; the others stay as they were. False if it already was off."""
    pref = db.session.scalar(
        select(NotificationPreference).where(
            NotificationPreference.user_id == user_id, NotificationPreference.category == category
        )
    )
    if pref is not None and pref.mode == DeliveryMode.OFF:
        return False
    if pref is None:
        db.session.add(NotificationPreference(user_id=user_id, category=category, mode=DeliveryMode.OFF))
    else:
        pref.mode = DeliveryMode.OFF
    db.session.flush()
    record(
        AuditAction.NOTIFICATION_PREFERENCES_CHANGED,
        actor=None,
        obj=None,
        user=str(public_id),
        via="one-click unsubscribe",
        **{category.value: DeliveryMode.OFF.value},
    )
    return True
