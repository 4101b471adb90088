"""Scoped user queries: a user outside the actor's scope does not exist (404)."""

import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import Select, select

from portal.accounts.models import User, UserSession
from portal.core.paging import DEFAULT_PER_PAGE, Page, SortKey, paginate
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
    return list(
        db.session.scalars(
            select(UserSession)
            .where(
                UserSession.user_id == user.id,
                UserSession.ended_at.is_(None),
                UserSession.created_at > now - timedelta(hours=cfg["SESSION_ABSOLUTE_HOURS"]),
                UserSession.last_seen_at > now - timedelta(minutes=cfg["SESSION_IDLE_MINUTES"]),
            )
            .order_by(UserSession.created_at.desc())
        )
    )


def recent_sign_ins(user: User) -> list[UserSession]:
    return list(
        db.session.scalars(
            select(UserSession)
            .where(UserSession.user_id == user.id)
            .order_by(UserSession.created_at.desc())
            .limit(RECENT_SIGN_INS)
        )
    )


def members_of(organization) -> list[User]:
    return list(
        db.session.scalars(select(User).where(User.organization_id == organization.id).order_by(User.full_name))
    )


def role_counts() -> dict:
    """Accounts per role, and how many invitations are still open (no password set yet)."""
    from sqlalchemy import func

    counts = dict(db.session.execute(select(User.role, func.count()).group_by(User.role)).all())
    pending = db.session.scalar(select(func.count()).select_from(User).where(User.password_hash.is_(None)))
    return {"by_role": counts, "pending": pending}


def get_own_session_or_404(user: User, public_id: uuid.UUID) -> UserSession:
    """One of the user's own open sessions (ending someone else's is a 404)."""
    return db.first_or_404(
        select(UserSession).where(
            UserSession.public_id == public_id, UserSession.user_id == user.id, UserSession.ended_at.is_(None)
        )
    )


def active_clinician_by_npi(organization_id: int, npi: str) -> User | None:
    """The organization's first enabled account with this NPI (the referring clinician an EHR names)."""
    return db.session.scalar(
        select(User)
        .where(User.organization_id == organization_id, User.npi == npi, User.is_enabled.is_(True))
        .order_by(User.id)
        .limit(1)
    )


BY_NAME = (SortKey(User.full_name, lambda u: u.full_name), SortKey(User.id, lambda u: u.id))


def users_page(actor: User, *, cursor: str | None = None, per_page: int = DEFAULT_PER_PAGE) -> Page[User]:
    """The accounts the actor may manage, by name, one page."""
    return paginate(visible_users(actor), BY_NAME, listing="admin-users", cursor=cursor, per_page=per_page)
