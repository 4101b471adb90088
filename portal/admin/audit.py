"""The audit viewer's query: events filtered by actor, patient, action and practice days."""

from datetime import date, timedelta

from sqlalchemy import Select, select

from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.core.time import practice_day_start
from portal.core.validators import parse_uuid


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def filtered_events(args) -> tuple[Select, dict]:
    """(event, actor) rows matching the viewer's filters, and the filters as understood. The dates are
    the practice's calendar days, as everywhere on the pages."""
    filters = {
        "actor": (args.get("actor") or "").strip().lower(),
        "patient": parse_uuid(args.get("patient")) if args.get("patient") else None,
        "action": (args.get("action") or "").strip(),
        "since": _date(args.get("since")),
        "until": _date(args.get("until")),
    }
    query = select(AuditEvent, User).outerjoin(User, User.id == AuditEvent.actor_id)
    if filters["actor"]:
        query = query.where(User.email == filters["actor"])
    if filters["patient"]:
        query = query.where(AuditEvent.patient_id == filters["patient"])
    if filters["action"]:
        query = query.where(AuditEvent.action == filters["action"])
    if filters["since"]:
        query = query.where(AuditEvent.occurred_at >= practice_day_start(filters["since"]))
    if filters["until"]:
        query = query.where(AuditEvent.occurred_at < practice_day_start(filters["until"] + timedelta(days=1)))
    return query, filters


def csv_rows(query: Select, limit: int = 100_000):
    from portal.extensions import db

    for e, u in db.session.execute(query.order_by(AuditEvent.id.desc()).limit(limit)):
        yield (
            e.id,
            e.seq or "",
            e.occurred_at.isoformat(),
            u.email if u else "",
            e.action,
            e.object_type or "",
            e.object_id or "",
            e.patient_id or "",
            e.request_id or "",
            e.ip_address or "",
            reason_of(e),
        )


def reason_of(event: AuditEvent) -> str:
    """Why a sign-in (password, SSO, second factor) or a token was refused: a short code, never PHI."""
    reason = (event.detail or {}).get("reason")
    return str(reason)[:64] if reason else ""
