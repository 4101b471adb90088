"""Routes shared by the pages that manage accounts (practice admins and partner admins)."""

import uuid
from collections.abc import Callable

from flask import Blueprint, flash, redirect, url_for
from flask_login import current_user

from portal.accounts import services
from portal.accounts.models import User
from portal.accounts.queries import get_visible_user_or_404
from portal.core.errors import UserError
from portal.core.permissions import Permission, requires


def add_account_routes(bp: Blueprint, permission: Permission, back: str) -> None:
    """Deactivate, reactivate and resend an invitation, as ``<bp>.deactivate_user`` and so on, for the
    accounts the signed-in admin may reach (the scoped query decides: 404); each returns to ``back``."""

    @bp.post("/users/<uuid:user_id>/deactivate", endpoint="deactivate_user")
    @requires(permission)
    def deactivate_user(user_id: uuid.UUID):
        return _act_on(user_id, back, lambda user: _set_enabled(user, False))

    @bp.post("/users/<uuid:user_id>/reactivate", endpoint="reactivate_user")
    @requires(permission)
    def reactivate_user(user_id: uuid.UUID):
        return _act_on(user_id, back, lambda user: _set_enabled(user, True))

    @bp.post("/users/<uuid:user_id>/resend", endpoint="resend_invitation")
    @requires(permission)
    def resend_invitation(user_id: uuid.UUID):
        return _act_on(user_id, back, _resend_invitation)


def _act_on(user_id: uuid.UUID, back: str, action: Callable[[User], str]):
    user = get_visible_user_or_404(current_user, user_id)
    try:
        flash(action(user), "success")
    except UserError as exc:
        flash(exc.message, "error")
    return redirect(url_for(back))


def _set_enabled(user: User, enabled: bool) -> str:
    services.set_enabled(current_user, user, enabled)
    return f"{user.full_name} is now {'active' if enabled else 'deactivated'}."


def _resend_invitation(user: User) -> str:
    services.resend_invitation(current_user, user)
    return f"A new invitation is on its way to {user.email}; the earlier link no longer works."
