"""Loading partner organizations."""

import uuid

from sqlalchemy import func, select

from portal.accounts.models import User
from portal.core.paging import DEFAULT_PER_PAGE, Page, SortKey, paginate
from portal.core.validators import parse_uuid
from portal.extensions import db
from portal.partners.models import Organization

BY_NAME = (SortKey(Organization.name, lambda row: row[0].name), SortKey(Organization.id, lambda row: row[0].id))


def get_organization_or_404(public_id: uuid.UUID) -> Organization:
    return db.first_or_404(select(Organization).where(Organization.public_id == public_id))


def organization_by_public_id(value: str | None) -> Organization | None:
    """The organization a form field names by its public id; None when it names none."""
    return db.session.scalar(select(Organization).where(Organization.public_id == parse_uuid(value))) if value else None


def all_organizations() -> list[Organization]:
    """Every organization by name (for a choice of organization on a form)."""
    return list(db.session.scalars(select(Organization).order_by(Organization.name)))


def organizations_with_user_counts(*, cursor: str | None = None, per_page: int = DEFAULT_PER_PAGE) -> Page:
    """(organization, number of users) rows by name."""
    query = (
        select(Organization, func.count(User.id))
        .outerjoin(User, User.organization_id == Organization.id)
        .group_by(Organization.id)
    )
    return paginate(query, BY_NAME, listing="admin-organizations", cursor=cursor, per_page=per_page, scalars=False)


def organization_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Organization))
