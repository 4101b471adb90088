"""Reads about passkeys and where they are required (the older second-factor reads live in services.py)."""

import uuid

from sqlalchemy import func, select

from portal.accounts.models import User
from portal.core.permissions import Role
from portal.extensions import db
from portal.mfa.models import PasskeyRequirement, WebauthnCredential
from portal.partners.models import Organization


def has_passkey(user: User) -> bool:
    query = select(WebauthnCredential.id).where(WebauthnCredential.user_id == user.id).limit(1)
    return db.session.scalar(query) is not None


def passkeys_of(user: User) -> list[WebauthnCredential]:
    """The user's passkeys, oldest first."""
    return list(
        db.session.scalars(
            select(WebauthnCredential)
            .where(WebauthnCredential.user_id == user.id)
            .order_by(WebauthnCredential.created_at, WebauthnCredential.id)
        )
    )


def own_passkey_or_404(user: User, public_id: uuid.UUID) -> WebauthnCredential:
    """Only the user's own passkeys exist for them: anyone else's is a 404."""
    return db.first_or_404(
        select(WebauthnCredential).where(
            WebauthnCredential.public_id == public_id, WebauthnCredential.user_id == user.id
        )
    )


def passkey_policy_overview() -> dict:
    """For the practice's sign-in policy page: how many active staff and admins have no passkey yet,
    and the organizations that require passkeys (a short list: only those an admin chose)."""
    practice = select(User.id).where(
        User.role.in_([Role.STAFF, Role.ADMIN]), User.is_enabled.is_(True), User.password_hash.is_not(None)
    )
    with_passkey = select(WebauthnCredential.user_id).where(WebauthnCredential.user_id.in_(practice))
    total = db.session.scalar(select(func.count()).select_from(practice.subquery()))
    without = db.session.scalar(
        select(func.count()).select_from(practice.where(User.id.not_in(with_passkey)).subquery())
    )
    organizations = db.session.execute(
        select(Organization.public_id, Organization.name)
        .where(Organization.id.in_(select(PasskeyRequirement.organization_id)))
        .order_by(Organization.name)
    ).all()
    return {"practice_users": total, "practice_without_passkey": without, "organizations": organizations}
