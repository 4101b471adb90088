"""The accounting of disclosures: the phi.disclosed audit events about one patient, and who they went to."""

from sqlalchemy import Select, select

from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.audit.services import AuditAction


def disclosures_of(patient) -> Select:
    """(event, user) rows; the user is None for a disclosure through the FHIR API (the client names itself
    in detail)."""
    return (
        select(AuditEvent, User)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .where(AuditEvent.patient_id == patient.public_id, AuditEvent.action == AuditAction.DISCLOSURE.value)
    )


def csv_rows(query: Select):
    from portal.extensions import db

    for event, user in db.session.execute(query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())):
        yield (
            event.occurred_at.isoformat(),
            user.full_name if user else f"API client {event.detail.get('client_name', '')}",
            user.email if user else event.detail.get("client", ""),
            event.detail.get("organization", ""),
            event.object_type,
            event.object_id,
            event.detail.get("category", ""),
        )
