"""Reading single sign-on settings and the accounts bound to a provider."""

import uuid

from sqlalchemy import select

from portal.accounts.models import User
from portal.core.paging import DEFAULT_PER_PAGE, Page, SortKey, paginate
from portal.extensions import db
from portal.sso.domains import domain_of
from portal.sso.models import OidcProvider, SsoDomain, SsoIdentity

BY_NAME = (
    SortKey(User.full_name, lambda row: row[1].full_name),
    SortKey(SsoIdentity.id, lambda row: row[0].id),
)


def provider_of(org) -> OidcProvider | None:
    return db.session.scalar(select(OidcProvider).where(OidcProvider.organization_id == org.id))


def provider_by_public_id(value: str) -> OidcProvider | None:
    try:
        public_id = uuid.UUID(str(value))
    except ValueError:
        return None
    return db.session.scalar(select(OidcProvider).where(OidcProvider.public_id == public_id))


def provider_for_email(email: str) -> OidcProvider | None:
    """The enabled provider that a verified domain routes this address to, if any."""
    return db.session.scalar(
        select(OidcProvider)
        .join(SsoDomain)
        .where(
            SsoDomain.domain == domain_of(email),
            SsoDomain.verified_at.is_not(None),
            OidcProvider.is_enabled.is_(True),
        )
    )


def sso_only_provider_for(email: str) -> OidcProvider | None:
    """The provider of an SSO-only organization that this address signs in through, if any."""
    provider = provider_for_email(email)
    return provider if provider is not None and provider.organization.is_sso_only else None


def bound_users(org, *, cursor: str | None = None, per_page: int = DEFAULT_PER_PAGE) -> Page:
    """(identity, user) rows of the organization's accounts bound to its provider, by name."""
    query = (
        select(SsoIdentity, User)
        .join(User, User.id == SsoIdentity.user_id)
        .join(OidcProvider, OidcProvider.id == SsoIdentity.provider_id)
        .where(OidcProvider.organization_id == org.id, User.organization_id == org.id)
    )
    return paginate(query, BY_NAME, listing="sso-users", cursor=cursor, per_page=per_page, scalars=False)


def bound_identity_of(org, user_public_id: uuid.UUID) -> SsoIdentity | None:
    """The binding of one of the organization's accounts; None for anyone else's (a 404)."""
    return db.session.scalar(
        select(SsoIdentity)
        .join(User, User.id == SsoIdentity.user_id)
        .where(User.public_id == user_public_id, User.organization_id == org.id)
    )
