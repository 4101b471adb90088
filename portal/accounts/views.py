"""View helpers shared by the pages that manage accounts (practice admins and partner admins)."""

import uuid

from flask import flash, redirect, url_for
from flask_login import current_user

from portal.accounts import services
from portal.accounts.queries import get_visible_user_or_404
from portal.core.errors import UserError


def set_enabled_and_return(user_id: uuid.UUID, enabled: bool, back: str):
    """Deactivate or reactivate an account the signed-in admin may reach (the scoped query decides: 404)."""
    user = get_visible_user_or_404(current_user, user_id)
    try:
        services.set_enabled(current_user, user, enabled)
        flash(f"{user.full_name} is now {'active' if enabled else 'deactivated'}.", "success")
    except UserError as exc:
        flash(exc.message, "error")
    return redirect(url_for(back))


def resend_invitation_and_return(user_id: uuid.UUID, back: str):
    """A new invitation link for an account the signed-in admin may reach (the scoped query decides: 404)."""
    user = get_visible_user_or_404(current_user, user_id)
    try:
        services.resend_invitation(current_user, user)
        flash(f"A new invitation is on its way to {user.email}; the earlier link no longer works.", "success")
    except UserError as exc:
        flash(exc.message, "error")
    return redirect(url_for(back))
