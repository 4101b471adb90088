"""Test factories: plain functions that add and flush, never commit."""
import itertools

from portal.auth.models import User
from portal.auth.passwords import hash_password
from portal.core.permissions import Role
from portal.extensions import db
from portal.partners.models import Organization, OrganizationKind

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


def make_organization(name: str | None = None, **kwargs) -> Organization:
    org = Organization(name=name or f"Partner Org {next(_seq)}",
                       kind=kwargs.pop("kind", OrganizationKind.ORTHOPEDICS), **kwargs)
    db.session.add(org)
    db.session.flush()
    return org


def make_user(role: Role | str = Role.PARTNER, organization: Organization | None = None,
              password: str | None = PASSWORD, **kwargs) -> User:
    role = Role(role)
    if role.is_partner and organization is None:
        organization = make_organization()
    n = next(_seq)
    user = User(
        email=kwargs.pop("email", f"user{n}@example.com"),
        full_name=kwargs.pop("full_name", f"Test User {n}"),
        role=role,
        organization_id=organization.id if role.is_partner else None,
        password_hash=hash_password(password) if password else None,
        **kwargs,
    )
    db.session.add(user)
    db.session.flush()
    return user
