"""Who must use a second factor, who must use a passkey, and how long a browser may be remembered."""

from flask import current_app
from sqlalchemy import exists, select

from portal.core.permissions import Role
from portal.extensions import db
from portal.mfa.models import PasskeyRequirement, WebauthnCredential

MAX_REMEMBER_DAYS = 30


def mfa_required(user) -> bool:
    """Practice staff and admins always; partners when their organization requires a second
    factor, or a passkey (which is one)."""
    role = Role(user.role)
    if not role.is_partner:
        return True
    org = user.organization
    return bool(org is not None and (org.is_mfa_required or passkey_required(user)))


def provider_mfa_accepted(user) -> bool:
    """Whether an identity provider's own second factor (its ``amr`` claim) may stand in for the
    portal's: only for partners whose organization chose to trust it (off by default), and never
    where a passkey is required (the portal cannot tell whether the provider's was phishing-resistant)."""
    if not Role(user.role).is_partner or user.organization is None or not user.organization.is_idp_mfa_trusted:
        return False
    return not passkey_required(user)


def _scope(organization_id: int | None):
    """The requirement rows of one scope: the practice (None) or one partner organization."""
    if organization_id is None:
        return PasskeyRequirement.organization_id.is_(None)
    return PasskeyRequirement.organization_id == organization_id


def _user_scope(user) -> int | None | bool:
    """The scope whose policy applies to this user; False for a partner without an organization."""
    if not Role(user.role).is_partner:
        return None
    return user.organization_id if user.organization_id is not None else False


def passkey_required(user) -> bool:
    """Staff and admins when the practice requires passkeys; partners when their organization does."""
    scope = _user_scope(user)
    if scope is False:
        return False
    return bool(db.session.scalar(select(exists().where(_scope(scope)))))


def owes_passkey(user) -> bool:
    """Required to sign in with a passkey, and has none yet (one statement: asked on every request
    of a session that did not sign in with a passkey)."""
    scope = _user_scope(user)
    if scope is False:
        return False
    has_one = exists().where(WebauthnCredential.user_id == user.id)
    return bool(db.session.scalar(select(exists().where(_scope(scope)) & ~has_one)))


def scope_requires_passkey(organization_id: int | None) -> bool:
    return bool(db.session.scalar(select(exists().where(_scope(organization_id)))))


def remember_days(user) -> int:
    """Days a trusted browser may skip the second factor for this user; 0 means never.

    Never where a passkey is required: that policy asks for a phishing-resistant factor at every
    sign-in, and a browser remembered after an authenticator code would stand in for it."""
    days = min(int(current_app.config["MFA_REMEMBER_DAYS"]), MAX_REMEMBER_DAYS)
    if days <= 0:
        return 0
    if Role(user.role).is_partner and not (user.organization and user.organization.is_device_trust_allowed):
        return 0
    if passkey_required(user):
        return 0
    return days
