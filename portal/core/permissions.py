"""Declared authorization: a permission enum, role grants, a view decorator and can().

Every endpoint must declare either a permission or @public; an undeclared endpoint
makes create_app() fail, and is refused at request time as a second line of defence.
"""

import enum
from collections.abc import Callable
from functools import wraps

from flask import Flask, abort, current_app, request
from flask_login import current_user


class Role(enum.StrEnum):
    PARTNER = "partner"
    PARTNER_ADMIN = "partner_admin"
    STAFF = "staff"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()

    @property
    def is_partner(self) -> bool:
        return self in (Role.PARTNER, Role.PARTNER_ADMIN)


class Permission(enum.StrEnum):
    """`<scope>:<resource>:<action>`, after Warehouse."""

    ACCOUNT_MANAGE = "account:self:manage"
    PARTNER_HOME = "partner:home:view"
    PARTNER_USERS_MANAGE = "partner:users:manage"
    PARTNER_SSO_MANAGE = "partner:sso:manage"  # their own organization's single sign-on
    STAFF_HOME = "staff:home:view"
    ADMIN_HOME = "admin:home:view"
    ORGANIZATIONS_MANAGE = "admin:organizations:manage"
    USERS_MANAGE = "admin:users:manage"
    REFERRALS_SUBMIT = "partner:referrals:submit"
    REFERRALS_FOLLOW = "partner:referrals:view"
    INTAKE_WORK = "staff:referrals:manage"
    LICENSURE_MANAGE = "admin:licensure:manage"
    AUDIT_REVIEW = "admin:audit:view"
    RELATIONSHIPS_MANAGE = "staff:relationships:manage"
    LEARNING_VIEW = "partner:learning:view"
    OUTBOX_MANAGE = "admin:outbox:manage"
    REPORTS_VIEW = "partner:reports:view"
    STORIES_BROWSE = "partner:stories:view"
    ANALYTICS_VIEW = "staff:analytics:view"
    STORIES_WRITE = "staff:stories:manage"
    INSTRUMENTS_MANAGE = "admin:instruments:manage"
    API_CLIENTS_MANAGE = "admin:api-clients:manage"
    CONSENT_TEXTS_MANAGE = "admin:consent-texts:manage"


_PARTNER = {
    Permission.ACCOUNT_MANAGE,
    Permission.PARTNER_HOME,
    Permission.REFERRALS_SUBMIT,
    Permission.REFERRALS_FOLLOW,
    Permission.LEARNING_VIEW,
    Permission.REPORTS_VIEW,
    Permission.STORIES_BROWSE,
}
_STAFF = {
    Permission.ACCOUNT_MANAGE,
    Permission.STAFF_HOME,
    Permission.INTAKE_WORK,
    Permission.RELATIONSHIPS_MANAGE,
    Permission.ANALYTICS_VIEW,
    Permission.STORIES_WRITE,
}

GRANTS: dict[Role, frozenset[Permission]] = {
    Role.PARTNER: frozenset(_PARTNER),
    Role.PARTNER_ADMIN: frozenset(_PARTNER | {Permission.PARTNER_USERS_MANAGE, Permission.PARTNER_SSO_MANAGE}),
    Role.STAFF: frozenset(_STAFF),
    Role.ADMIN: frozenset(
        _STAFF
        | {
            Permission.ADMIN_HOME,
            Permission.ORGANIZATIONS_MANAGE,
            Permission.USERS_MANAGE,
            Permission.LICENSURE_MANAGE,
            Permission.AUDIT_REVIEW,
            Permission.OUTBOX_MANAGE,
            Permission.INSTRUMENTS_MANAGE,
            Permission.API_CLIENTS_MANAGE,
            Permission.CONSENT_TEXTS_MANAGE,
        }
    ),
}

PUBLIC = "public"


class BearerScope(str):
    """Declared by portal.api.smart.requires_scope: the view checks a bearer token (not a session) for this scope."""


_ATTR = "required_permission"


def can_sign_in(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active)


def can(user, permission: Permission) -> bool:
    """The one question both templates and views ask."""
    return can_sign_in(user) and permission in GRANTS[Role(user.role)]


def requires(permission: Permission) -> Callable:
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            return view(*args, **kwargs)

        setattr(wrapped, _ATTR, permission)
        return wrapped

    return decorate


def public(view: Callable) -> Callable:
    setattr(view, _ATTR, PUBLIC)
    return view


def declared_permission(app: Flask, endpoint: str | None):
    if endpoint is None or endpoint == "static":
        return PUBLIC
    view = app.view_functions.get(endpoint)
    return getattr(view, _ATTR, None)


def undeclared_endpoints(app: Flask) -> list[str]:
    return sorted(e for e in app.view_functions if declared_permission(app, e) is None)


def register_permission_checks(app: Flask) -> None:
    missing = undeclared_endpoints(app)
    if missing:
        raise RuntimeError(f"endpoints without a declared permission: {', '.join(missing)}")
    app.jinja_env.globals.update(Permission=Permission)

    @app.context_processor
    def permissions_of_the_user():
        """Templates ask ``can(Permission.X)`` the same question as the views, answered from the
        user's grants looked up once per page (a page asks it twenty times for the navigation)."""
        user = current_user._get_current_object()
        granted = GRANTS[Role(user.role)] if can_sign_in(user) else frozenset()
        return {"can": granted.__contains__}

    @app.before_request
    def enforce_declared_permission():
        if request.routing_exception is not None:
            return None  # let the 404/405 handlers answer
        needed = declared_permission(current_app, request.endpoint)
        if needed == PUBLIC or isinstance(needed, BearerScope):
            return None
        if needed is None:
            current_app.logger.error("endpoint %s declares no permission", request.endpoint)
            abort(403)
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()
        if not can(current_user, needed):
            abort(403)
        return None
