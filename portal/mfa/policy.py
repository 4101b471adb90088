"""Who must use a second factor, and how long a browser may be remembered."""

from flask import current_app

from portal.core.permissions import Role

MAX_REMEMBER_DAYS = 30


def mfa_required(user) -> bool:
    """Practice staff and admins always; partners when their organization requires it."""
    role = Role(user.role)
    if not role.is_partner:
        return True
    org = user.organization
    return bool(org is not None and org.is_mfa_required)


def remember_days(user) -> int:
    """Days a trusted browser may skip the second factor for this user; 0 means never."""
    days = min(int(current_app.config["MFA_REMEMBER_DAYS"]), MAX_REMEMBER_DAYS)
    if days <= 0:
        return 0
    if Role(user.role).is_partner and not (user.organization and user.organization.is_device_trust_allowed):
        return 0
    return days
