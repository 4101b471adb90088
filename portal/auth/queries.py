"""Scoped user queries: a user outside the actor's scope does not exist (404)."""
import uuid

from flask import abort
from sqlalchemy import Select, select

from portal.auth.models import User
from portal.core.permissions import Role
from portal.extensions import db


def visible_users(actor: User) -> Select:
    query = select(User).order_by(User.full_name)
    if Role(actor.role) is Role.ADMIN:
        return query
    if Role(actor.role) is Role.PARTNER_ADMIN:
        return query.where(User.organization_id == actor.organization_id)
    return query.where(User.id == actor.id)


def get_visible_user_or_404(actor: User, public_id: uuid.UUID) -> User:
    user = db.session.scalar(visible_users(actor).where(User.public_id == public_id))
    if user is None:
        abort(404)
    return user
