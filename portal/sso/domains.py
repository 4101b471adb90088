"""Which e-mail domains an organization's provider may speak for.

A domain routes sign-ins to a provider, and a provider's word on an address in it opens (or
creates) an account, so a domain is refused when nobody can own it for an organization (public
mail), when it is the practice's, when another organization's provider has it, or when accounts
of another organization use it. An accepted domain still routes nobody until it is verified
(portal/sso/settings.py).
"""

import re
from functools import cache
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select

from portal.accounts.models import User
from portal.core.permissions import Role
from portal.extensions import db
from portal.sso.models import OidcProvider, SsoDomain

_PUBLIC_FILE = Path(__file__).parent / "data" / "public_mail_domains.txt"
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
MAX_DOMAINS = 50


class DomainError(ValueError):
    """A domain that cannot be used; the message is safe to show."""


@cache
def public_mail_domains() -> frozenset[str]:
    lines = _PUBLIC_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def domain_of(email: str) -> str:
    return (email or "").strip().lower().rpartition("@")[2]


def _within(domain: str, names) -> bool:
    """The domain is one of ``names`` or a subdomain of one."""
    return any(domain == n or domain.endswith("." + n) for n in names)


def parse(text: str) -> list[str]:
    """Domains from a list typed one per line (commas, spaces and a leading @ are forgiven)."""
    names = sorted({d.strip().lower().lstrip("@").rstrip(".") for d in re.split(r"[\s,;]+", text or "") if d.strip()})
    bad = [d for d in names if not _DOMAIN.match(d)]
    if bad:
        raise DomainError(f"Not a valid domain: {', '.join(bad[:5])}. Write each as hospital.org, one per line.")
    if not names:
        raise DomainError("Give at least one e-mail domain, such as hospital.org.")
    if len(names) > MAX_DOMAINS:
        raise DomainError(f"At most {MAX_DOMAINS} domains.")
    return names


def practice_domains() -> set[str]:
    """The practice's own: PRACTICE_EMAIL_DOMAINS, and the domains of its staff's and admins' addresses."""
    configured = current_app.config.get("PRACTICE_EMAIL_DOMAINS") or ""
    names = {d.strip().lower() for d in re.split(r"[\s,]+", configured) if d.strip()}
    emails = db.session.scalars(select(User.email).where(User.role.in_([Role.STAFF, Role.ADMIN])))
    return names | {domain_of(e) for e in emails}


def refusal(org, domain: str, *, by_practice: bool) -> str | None:
    """Why ``org``'s provider may not have ``domain``, or None."""
    if _within(domain, public_mail_domains()):
        return f"{domain} is a public mail service: nobody's addresses there can be vouched for by one organization."
    if _within(domain, practice_domains()):
        return f"{domain} is the practice's own domain; a partner organization's sign-in can never speak for it."
    owner = db.session.scalar(
        select(OidcProvider.organization_id)
        .join(SsoDomain)
        .where(SsoDomain.domain == domain, OidcProvider.organization_id != org.id)
    )
    if owner is not None:
        return f"{domain} is already used by another organization." if by_practice else _ASK_PRACTICE.format(domain)
    others = db.session.scalar(
        select(func.count())
        .select_from(User)
        .where(
            func.lower(User.email).like(f"%@{domain}"),
            User.organization_id.is_not(None),
            User.organization_id != org.id,
        )
    )
    if others:
        if by_practice:
            return f"{others} account(s) of other organizations use addresses at {domain}; their sign-in would change."
        return _ASK_PRACTICE.format(domain)
    return None


_ASK_PRACTICE = "{} cannot be added here. If your organization owns it, ask the practice's administrators."
