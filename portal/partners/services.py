"""Changing partner organizations."""

from sqlalchemy import func, select

from portal.audit.services import AuditAction, record
from portal.core.errors import UserError
from portal.extensions import db
from portal.partners.models import Organization, OrganizationKind


def create_organization(
    actor,
    *,
    name: str,
    kind: OrganizationKind,
    city: str | None = None,
    us_state: str | None = None,
    npi: str | None = None,
) -> Organization:
    """A new partner organization; names are unique whatever their case."""
    if db.session.scalar(select(Organization.id).where(func.lower(Organization.name) == name.lower())):
        raise UserError("An organization with this name already exists.", field="name")
    org = Organization(name=name, kind=kind, city=city or None, us_state=us_state or None, npi=npi or None)
    db.session.add(org)
    db.session.flush()
    record(AuditAction.ORGANIZATION_CREATED, actor=actor, obj=org)
    return org
