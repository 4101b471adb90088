"""Write audit events in the same transaction as the change they describe."""

import enum
import uuid

from flask import g, has_request_context, request

from portal.audit.chain import content_hash
from portal.audit.models import AuditEvent
from portal.core.time import now_utc
from portal.core.unit_of_work import side_insert
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
    MFA_CHALLENGED = "auth.mfa_challenged"
    MFA_FAILED = "auth.mfa_failed"
    MFA_ENROLLED = "auth.mfa_enrolled"
    MFA_DISABLED = "auth.mfa_disabled"
    MFA_RESET = "auth.mfa_reset"
    RECOVERY_CODE_USED = "auth.recovery_code_used"
    RECOVERY_CODES_REPLACED = "auth.recovery_codes_replaced"
    DEVICE_TRUSTED = "auth.device_trusted"
    DEVICE_REVOKED = "auth.device_revoked"
    PASSKEY_ADDED = "auth.passkey_added"
    PASSKEY_RENAMED = "auth.passkey_renamed"
    PASSKEY_REMOVED = "auth.passkey_removed"
    SESSION_ENDED = "auth.session_ended"
    SSO_STARTED = "auth.sso_started"
    SSO_FAILED = "auth.sso_failed"
    SSO_CONFIGURED = "organization.sso_configured"
    SSO_TESTED = "organization.sso_tested"
    SSO_DOMAIN_VERIFIED = "organization.sso_domain_verified"
    SSO_LINKED = "auth.sso_linked"
    SSO_UNLINKED = "auth.sso_unlinked"
    SSO_BACKCHANNEL_LOGOUT = "auth.sso_backchannel_logout"
    USER_PROVISIONED = "user.provisioned"
    USER_DEPROVISIONED = "user.deprovisioned"
    USER_ROLE_CHANGED = "user.role_changed"
    USER_EMAIL_CHANGED = "user.email_changed"
    SIGN_IN_POLICY_CHANGED = "organization.sign_in_policy_changed"
    PRACTICE_SIGN_IN_POLICY_CHANGED = "practice.sign_in_policy_changed"
    USER_INVITED = "user.invited"
    USER_INVITE_CONFLICT = "user.invite_conflict"
    USER_DEACTIVATED = "user.deactivated"
    USER_REACTIVATED = "user.reactivated"
    ORGANIZATION_CREATED = "organization.created"
    PHI_READ = "phi.read"
    PATIENT_LOOKUP = "patient.lookup"
    REFERRAL_SUBMITTED = "referral.submitted"
    REFERRAL_STATUS_CHANGED = "referral.status_changed"
    REFERRAL_NOTE_ADDED = "referral.note_added"
    REFERRAL_DUPLICATE_RESOLVED = "referral.duplicate_resolved"
    ATTACHMENT_UPLOADED = "attachment.uploaded"
    ATTACHMENT_DOWNLOADED = "attachment.downloaded"
    LICENSE_CHANGED = "practice.license_changed"
    CONSENT_RECORDED = "consent.recorded"
    CONSENT_REVOKED = "consent.revoked"
    UPDATE_WRITTEN = "update.written"
    UPDATE_RELEASED = "update.released"
    UPDATE_RETURNED = "update.returned"
    DISCLOSURE = "phi.disclosed"
    AUDIT_EXPORTED = "audit.exported"
    DISCLOSURES_EXPORTED = "audit.disclosures_exported"
    AUDIT_VERIFIED = "audit.verified"
    AUDIT_SEALED = "audit.sealed"  # a heartbeat checkpoint on a quiet trail (audit/chain.py)
    KEY_ROTATION = "phi.key_rotation"
    DOCUMENTS_SWEPT = "phi.documents_swept"  # `flask phi sweep`: orphaned uploads removed (portal/ops)
    BACKUP_COMPLETED = "portal.backup_completed"  # `flask portal backup` (portal/ops/backup.py)
    RESTORED = "portal.restored"  # `flask portal restore`, written into the restored database
    NOTIFICATION_PREFERENCES_CHANGED = "notifications.preferences_changed"
    OUTBOX_RETRIED = "outbox.retried"
    RELATIONSHIP_UPDATED = "relationship.updated"
    CONTACT_ADDED = "relationship.contact_added"
    TOUCHPOINT_LOGGED = "relationship.touchpoint_logged"
    PROSPECTS_IMPORTED = "relationship.prospects_imported"
    PROSPECTS_EXPORTED = "relationship.prospects_exported"
    EVENT_PUBLISHED = "learning.event_published"
    EVENT_RSVP = "learning.event_rsvp"
    EVENT_ATTENDANCE = "learning.event_attendance"
    RESOURCE_PUBLISHED = "learning.resource_published"
    SCORE_RECORDED = "outcome.score_recorded"
    SCORE_DELETED = "outcome.score_deleted"
    VISITS_RECORDED = "outcome.visits_recorded"
    INSTRUMENT_CHANGED = "outcome.instrument_changed"
    REPORT_EXPORTED = "report.exported"
    STORY_WRITTEN = "story.written"
    STORY_PUBLISHED = "story.published"
    STORY_WITHDRAWN = "story.withdrawn"
    API_CLIENT_REGISTERED = "api.client_registered"
    API_CLIENT_CHANGED = "api.client_changed"
    API_TOKEN_ISSUED = "api.token_issued"
    API_TOKEN_REFUSED = "api.token_refused"
    API_READ = "api.read"
    API_SUBMISSION_REPLAYED = "api.submission_replayed"
    API_SUBSCRIPTION_CREATED = "api.subscription_created"
    API_SUBSCRIPTION_DELETED = "api.subscription_deleted"
    API_NOTIFICATION_SENT = "api.notification_sent"


# Accesses whose record says what a response showed: dropped when the response became a 5xx.
SHOWS_PHI = frozenset(
    {
        AuditAction.PHI_READ,
        AuditAction.DISCLOSURE,
        AuditAction.API_READ,
        AuditAction.ATTACHMENT_DOWNLOADED,
        AuditAction.PATIENT_LOOKUP,
    }
)


def _event(action: AuditAction, actor, obj, patient_id: uuid.UUID | None, detail: dict) -> AuditEvent:
    event = AuditEvent(
        action=str(action),
        actor_id=getattr(actor, "id", None),
        object_type=type(obj).__name__ if obj is not None else None,
        object_id=str(obj.public_id) if obj is not None else None,
        patient_id=patient_id,
        # An API client (portal.api) is no user: actor_id stays NULL and the client names itself in detail.
        detail={k: str(v) for k, v in {**getattr(actor, "audit_detail", {}), **detail}.items()},
    )
    if has_request_context():
        event.request_id = g.get("request_id")
        event.ip_address = request.remote_addr
    event.occurred_at = now_utc()
    event.content_hash = content_hash(event)
    return event


def record(
    action: AuditAction,
    *,
    actor=None,
    obj=None,
    patient_id: uuid.UUID | None = None,
    **detail,
) -> AuditEvent:
    """Record a change: the event commits (or rolls back) with the change it describes."""
    event = _event(action, actor, obj, patient_id, detail)
    db.session.add(event)
    return event


# What a record_access() row holds: every column but the database's own id and the sealer's.
_ROW_COLUMNS = tuple(c.key for c in AuditEvent.__table__.columns if c.key not in ("id", "seq", "chain_hash"))


def record_access(
    action: AuditAction,
    *,
    actor=None,
    obj=None,
    patient_id: uuid.UUID | None = None,
    **detail,
) -> None:
    """Record an access or a refusal: stored whatever the request's outcome (a form page that
    answers 422 still showed the patient; a 403 is a security event), in a short transaction of
    its own when the request has nothing to commit (portal.core.unit_of_work). An access that
    shows PHI (``patient_id`` or a disclosure) is dropped only if the response became a 5xx."""
    event = _event(action, actor, obj, patient_id, detail)
    row = {key: getattr(event, key) for key in _ROW_COLUMNS}
    shows_phi = patient_id is not None or action in SHOWS_PHI
    if not side_insert(AuditEvent.__table__, row, shows_phi=shows_phi):
        db.session.add(event)  # no request: the command or job commits it with its own work


def record_denied(app, *, actor, endpoint: str) -> None:
    """A request refused with 403 (portal.core.signals.access_denied): kept although the request fails."""
    record_access(AuditAction.PERMISSION_DENIED, actor=actor, endpoint=endpoint)
