"""CSV import and export of prospect organizations.

Import is all or nothing: every row is checked first, and one bad row imports nothing
(the messages name the line). Organizations already in the portal (same name, any case)
are skipped, so importing the same file twice is harmless. Export neutralises cells that
a spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select

from portal.accounts.models import User
from portal.audit.services import AuditAction, record, record_access
from portal.core.csv import to_csv
from portal.core.permissions import Role
from portal.core.validators import US_STATES, npi_is_valid
from portal.extensions import db
from portal.partners.models import Organization, OrganizationKind, RelationshipStatus
from portal.relationships.models import Contact, RelationshipOwner

COLUMNS = [
    "name",
    "kind",
    "city",
    "state",
    "npi",
    "owner_email",
    "next_check_in",
    "contact_name",
    "contact_title",
    "contact_email",
    "contact_phone",
]
MAX_BYTES = 1024 * 1024
MAX_ROWS = 2000
MAX_ERRORS = 20


class ImportRefused(ValueError):
    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


# --- export -----------------------------------------------------------------------------


def export_prospects(actor: User) -> str:
    rows = db.session.execute(
        select(Organization, User)
        .outerjoin(RelationshipOwner, RelationshipOwner.organization_id == Organization.id)
        .outerjoin(User, User.id == RelationshipOwner.owner_id)
        .where(Organization.relationship_status == RelationshipStatus.PROSPECT)
        .order_by(Organization.name)
    ).all()
    primary = {
        c.organization_id: c
        for c in db.session.scalars(
            select(Contact)
            .where(Contact.organization_id.in_([o.id for o, _ in rows]))
            .order_by(Contact.is_primary, Contact.id)
        )
    }  # the last one per organization wins: primary first
    lines = [COLUMNS]
    for org, owner in rows:
        contact = primary.get(org.id)
        lines.append(
            [
                org.name,
                org.kind.value,
                org.city,
                org.us_state,
                org.npi,
                owner.email if owner else "",
                org.next_check_in.isoformat() if org.next_check_in else "",
                contact.name if contact else "",
                contact.title if contact else "",
                contact.email if contact else "",
                contact.phone if contact else "",
            ]
        )
    record_access(AuditAction.PROSPECTS_EXPORTED, actor=actor, count=len(rows))
    return to_csv(lines)


# --- import -----------------------------------------------------------------------------

_KINDS = {k.value: k for k in OrganizationKind} | {k.label.lower(): k for k in OrganizationKind}


@dataclass
class _Row:
    line: int
    name: str
    kind: OrganizationKind
    city: str | None
    state: str | None
    npi: str | None
    owner: User | None
    next_check_in: date | None
    contact: dict


def _read(data: bytes) -> list[dict]:
    if len(data) > MAX_BYTES:
        raise ImportRefused([f"The file is larger than {MAX_BYTES // 1024} KB."])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused(["The file is not UTF-8 text. Save it as “CSV UTF-8” and try again."]) from None
    reader = csv.DictReader(io.StringIO(text))
    headers = [h.strip().lower() for h in reader.fieldnames or []]
    if "name" not in headers:
        raise ImportRefused(["The first line must name the columns, including “name”."])
    unknown = sorted(set(headers) - set(COLUMNS) - {""})
    if unknown:
        raise ImportRefused([f"Unknown column(s): {', '.join(unknown)}. Known: {', '.join(COLUMNS)}."])
    reader.fieldnames = headers
    rows = [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]
    if len(rows) > MAX_ROWS:
        raise ImportRefused([f"At most {MAX_ROWS} rows per import."])
    return rows


def _check(line: int, raw: dict, owners: dict[str, User], errors: list[str]) -> _Row | None:
    problems = []
    name = raw.get("name", "")
    if not name or len(name) > 200:
        problems.append("a name (up to 200 characters) is required")
    kind = _KINDS.get((raw.get("kind") or "other").lower())
    if kind is None:
        problems.append(f"kind must be one of {', '.join(k.value for k in OrganizationKind)}")
    state = (raw.get("state") or "").upper() or None
    if state and state not in US_STATES:
        problems.append("state must be a two-letter US state code")
    npi = raw.get("npi") or None
    if npi and not npi_is_valid(npi):
        problems.append("the NPI is not valid")
    owner_email = (raw.get("owner_email") or "").lower()
    owner = owners.get(owner_email) if owner_email else None
    if owner_email and owner is None:
        problems.append("owner_email is not an active practice staff account")
    next_check_in = None
    if raw.get("next_check_in"):
        try:
            next_check_in = date.fromisoformat(raw["next_check_in"])
        except ValueError:
            problems.append("next_check_in must be a date like 2026-12-31")
    for key, limit in (
        ("city", 100),
        ("contact_name", 200),
        ("contact_title", 120),
        ("contact_email", 254),
        ("contact_phone", 40),
    ):
        if len(raw.get(key) or "") > limit:
            problems.append(f"{key} is longer than {limit} characters")
    if problems:
        errors.append(f"Line {line}: " + "; ".join(problems) + ".")
        return None
    contact = {k: raw.get(f"contact_{k}") or None for k in ("name", "title", "email", "phone")}
    return _Row(line, name, kind, raw.get("city") or None, state, npi, owner, next_check_in, contact)


def import_prospects(actor: User, data: bytes) -> ImportResult:
    raw_rows = _read(data)
    owners = {
        u.email.lower(): u
        for u in db.session.scalars(select(User).where(User.role.in_([Role.STAFF, Role.ADMIN]), User.is_enabled))
    }
    errors: list[str] = []
    rows = [r for line, raw in enumerate(raw_rows, start=2) if (r := _check(line, raw, owners, errors))]
    if errors:
        raise ImportRefused(
            errors[:MAX_ERRORS] + ([f"… and {len(errors) - MAX_ERRORS} more."] if len(errors) > MAX_ERRORS else [])
        )
    existing = set(db.session.scalars(select(func.lower(Organization.name))))
    result = ImportResult()
    for row in rows:
        if row.name.lower() in existing:
            result.skipped.append(row.name)
            continue
        existing.add(row.name.lower())
        org = Organization(
            name=row.name,
            kind=row.kind,
            city=row.city,
            us_state=row.state,
            npi=row.npi,
            relationship_status=RelationshipStatus.PROSPECT,
            next_check_in=row.next_check_in,
        )
        db.session.add(org)
        db.session.flush()
        if row.owner:
            db.session.add(RelationshipOwner(organization_id=org.id, owner_id=row.owner.id))
        if row.contact["name"]:
            db.session.add(Contact(organization_id=org.id, is_primary=True, **row.contact))
        result.created.append(row.name)
    db.session.flush()
    record(AuditAction.PROSPECTS_IMPORTED, actor=actor, created=len(result.created), skipped=len(result.skipped))
    return result
