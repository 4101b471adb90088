"""Write audit events in the same transaction as the change they describe."""
import enum
import uuid

from flask import g, has_request_context, request

from portal.audit.models import AuditEvent
from portal.extensions import db


class AuditAction(enum.StrEnum):
    LOGIN = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    LOCKOUT = "auth.lockout"
    LOGOUT = "auth.logout"
    SESSION_EXPIRED = "auth.session_expired"
    PASSWORD_CHANGED = "auth.password_changed"
    PASSWORD_RESET_REQUESTED = "auth.password_reset_requested"
    PERMISSION_DENIED = "auth.permission_denied"
    USER_INVITED = "user.invited"
    USER_DEACTIVATED = "user.deactivated"
    USER_REACTIVATED = "user.reactivated"
    ORGANIZATION_CREATED = "organization.created"


def record(
    action: AuditAction,
    *,
    actor=None,
    obj=None,
    patient_id: uuid.UUID | None = None,
    **detail,
) -> AuditEvent:
    """Add an audit event to the session; it commits (or rolls back) with the request."""
    event = AuditEvent(
        action=str(action),
        actor_id=getattr(actor, "id", None),
        object_type=type(obj).__name__ if obj is not None else None,
        object_id=str(obj.public_id) if obj is not None else None,
        patient_id=patient_id,
        detail={k: str(v) for k, v in detail.items()},
    )
    if has_request_context():
        event.request_id = g.get("request_id")
        event.ip_address = request.remote_addr
    db.session.add(event)
    return event
