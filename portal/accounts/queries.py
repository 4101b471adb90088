"""Scoped user queries: a user outside the actor's scope does not exist (404)."""
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import Select, select

from portal.accounts.models import User, UserSession
from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.extensions import db


def visible_users(actor: User) -> Select:
    query = select(User).order_by(User.full_name)
    if Role(actor.role) is Role.ADMIN:
        return query
    if Role(actor.role) is Role.PARTNER_ADMIN:
        return query.where(User.organization_id == actor.organization_id)
    return query.where(User.id == actor.id)


def get_visible_user_or_404(actor: User, public_id: uuid.UUID) -> User:
    return db.first_or_404(visible_users(actor).where(User.public_id == public_id))


RECENT_SIGN_INS = 10


def active_sessions(user: User) -> list[UserSession]:
    """Open sessions still inside the idle and absolute timeouts, newest first."""
    cfg, now = current_app.config, now_utc()
    return list(db.session.scalars(select(UserSession).where(
        UserSession.user_id == user.id, UserSession.ended_at.is_(None),
        UserSession.created_at > now - timedelta(hours=cfg["SESSION_ABSOLUTE_HOURS"]),
        UserSession.last_seen_at > now - timedelta(minutes=cfg["SESSION_IDLE_MINUTES"]),
    ).order_by(UserSession.created_at.desc())))


def recent_sign_ins(user: User) -> list[UserSession]:
    return list(db.session.scalars(select(UserSession).where(UserSession.user_id == user.id)
                                   .order_by(UserSession.created_at.desc()).limit(RECENT_SIGN_INS)))
