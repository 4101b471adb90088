"""Audit review (admin) and the accounting of disclosures for one patient (staff)."""
import csv
import io
import uuid
from datetime import date, datetime, time, timedelta

from flask import Blueprint, Response, render_template, request
from flask_login import current_user
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.audit.services import AuditAction, record_access
from portal.accounts.models import User
from portal.core.paging import SortKey, cursor_arg, paginate, per_page_arg
from portal.core.permissions import Permission, requires
from portal.core.time import as_utc
from portal.extensions import db
from portal.patients.queries import get_patient_or_404

bp = Blueprint("audit", __name__)
NEWEST_FIRST = (SortKey(AuditEvent.id, lambda row: row[0].id, descending=True),)
DISCLOSURE_ORDER = (SortKey(AuditEvent.occurred_at, lambda row: row[0].occurred_at, descending=True),
                    SortKey(AuditEvent.id, lambda row: row[0].id, descending=True))


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _filtered(args) -> tuple[object, dict]:
    filters = {"actor": (args.get("actor") or "").strip().lower(), "patient": _uuid(args.get("patient")),
               "action": (args.get("action") or "").strip(), "since": _date(args.get("since")),
               "until": _date(args.get("until"))}
    query = select(AuditEvent, User).outerjoin(User, User.id == AuditEvent.actor_id)
    if filters["actor"]:
        query = query.where(User.email == filters["actor"])
    if filters["patient"]:
        query = query.where(AuditEvent.patient_id == filters["patient"])
    if filters["action"]:
        query = query.where(AuditEvent.action == filters["action"])
    if filters["since"]:
        query = query.where(AuditEvent.occurred_at >= as_utc(datetime.combine(filters["since"], time.min)))
    if filters["until"]:
        query = query.where(AuditEvent.occurred_at < as_utc(datetime.combine(filters["until"] + timedelta(days=1), time.min)))
    return query, filters


def _csv(rows, header, name) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={name}.csv"})


@bp.get("/admin/audit")
@requires(Permission.AUDIT_REVIEW)
def index():
    query, filters = _filtered(request.args)
    if request.args.get("format") == "csv":
        record_access(AuditAction.AUDIT_EXPORTED, actor=current_user, **{f"filter_{k}": v for k, v in filters.items() if v})
        rows = [(e.id, e.seq or "", e.occurred_at.isoformat(), u.email if u else "", e.action, e.object_type or "",
                 e.object_id or "", e.patient_id or "", e.request_id or "", e.ip_address or "")
                for e, u in db.session.execute(query.order_by(AuditEvent.id.desc()).limit(100_000))]
        return _csv(rows, ["id", "seq", "time", "actor", "action", "object_type", "object_id", "patient_id",
                           "request_id", "ip"], "audit")
    page = paginate(query, NEWEST_FIRST, listing="audit", cursor=cursor_arg(), per_page=per_page_arg(),
                    scalars=False)
    actions = sorted(a.value for a in AuditAction)
    return render_template("audit/index.html", page=page, filters=filters, actions=actions)


@bp.get("/staff/patients/<uuid:patient_id>/disclosures")
@requires(Permission.INTAKE_WORK)
def disclosures(patient_id: uuid.UUID):
    """HIPAA 164.528: who outside the practice saw which released information, and when."""
    patient = get_patient_or_404(current_user, patient_id)
    # Outer join: disclosures through the FHIR API have no user actor, the client names itself in detail.
    query = (select(AuditEvent, User).outerjoin(User, User.id == AuditEvent.actor_id)
             .where(AuditEvent.patient_id == patient.public_id, AuditEvent.action == AuditAction.DISCLOSURE.value))
    if request.args.get("format") == "csv":
        rows = db.session.execute(query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())).all()
        record_access(AuditAction.DISCLOSURES_EXPORTED, actor=current_user, obj=patient, patient_id=patient.public_id)
        return _csv([(e.occurred_at.isoformat(), u.full_name if u else f"API client {e.detail.get('client_name', '')}",
                      u.email if u else e.detail.get("client", ""), e.detail.get("organization", ""),
                      e.object_type, e.object_id, e.detail.get("category", "")) for e, u in rows],
                    ["time", "recipient", "recipient_email", "organization", "object_type", "object_id", "category"],
                    "disclosures")
    page = paginate(query, DISCLOSURE_ORDER, listing="disclosures", cursor=cursor_arg(), per_page=per_page_arg(),
                    scalars=False)
    record_access(AuditAction.PHI_READ, actor=current_user, obj=patient, patient_id=patient.public_id, view="disclosures")
    return render_template("audit/disclosures.html", patient=patient, page=page)
