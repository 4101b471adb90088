"""Every e-mail the portal sends: its category and the context keys its template needs.

A template lives in templates/email/<name>.txt (with a ``subject`` block) and <name>.html.
Context values are ids, reference numbers, names of staff or organizations, counts and
links: never PHI. tests/notifications/test_templates.py keeps this table and the files
on disk in step.
"""

import enum
from dataclasses import dataclass

from portal.core.permissions import Role


class Category(enum.StrEnum):
    """Non-essential categories a user may hold back or turn off."""

    REFERRAL_UPDATES = "referral_updates"
    PROGRESS_UPDATES = "progress_updates"
    DIGESTS = "digests"
    STAFF_REMINDERS = "staff_reminders"

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self][0]

    @property
    def description(self) -> str:
        return CATEGORY_LABELS[self][1]

    @property
    def roles(self) -> frozenset[Role]:
        return CATEGORY_LABELS[self][2]


_PARTNERS = frozenset({Role.PARTNER, Role.PARTNER_ADMIN})
_PRACTICE = frozenset({Role.STAFF, Role.ADMIN})

CATEGORY_LABELS = {
    Category.REFERRAL_UPDATES: (
        "Referral updates",
        "Thank-yous for new referrals, status changes and, for the practice, new referrals in the intake queue.",
        _PARTNERS | _PRACTICE,
    ),
    Category.PROGRESS_UPDATES: (
        "Progress updates",
        "A new progress update is available for one of your referrals.",
        _PARTNERS,
    ),
    Category.DIGESTS: ("Monthly summary", "Your organization's referral numbers for the month.", _PARTNERS),
    Category.STAFF_REMINDERS: (
        "Staff reminders",
        "Partner check-ins due, partners at risk and consents expiring soon.",
        _PRACTICE,
    ),
}


@dataclass(frozen=True)
class EmailKind:
    name: str
    category: Category | None  # None: a security notice (or a digest), always delivered
    keys: tuple[str, ...] = ()

    @property
    def is_security(self) -> bool:
        return self.category is None and self.name != DIGEST


DIGEST = "digest"

_KINDS = [
    # Security notices: always sent, never held for a digest.
    EmailKind("invite", None, ("link", "inviter", "organization", "hours")),
    EmailKind("invite_sso", None, ("link", "inviter", "organization", "provider")),  # portal/sso: no password
    EmailKind("password_reset", None, ("link", "minutes")),
    EmailKind("mfa_reset", None),
    EmailKind("mfa_changed", None, ("when", "change")),
    EmailKind("mfa_changed", None, ("when", "change")),
    EmailKind("new_sign_in", None, ("when", "ip")),
    EmailKind("password_changed", None, ("when",)),
    EmailKind("invite_conflict", None, ("inviter", "organization", "link")),
    # To a patient (portal/econsent): always sent, no account, nothing about the patient but a link.
    EmailKind("patient_consent_request", None, ("link", "days")),
    EmailKind("patient_consent_copy", None, ("link",)),
    # Non-essential notices.
    EmailKind("referral_thanks", Category.REFERRAL_UPDATES, ("reference", "link", "clinician_name")),
    EmailKind("referral_welcome", Category.REFERRAL_UPDATES, ("reference", "link", "clinician_name")),
    EmailKind("intake_new_referral", Category.REFERRAL_UPDATES, ("reference", "link", "urgency")),
    EmailKind("referral_status_changed", Category.REFERRAL_UPDATES, ("reference", "link", "status_label")),
    EmailKind("update_available", Category.PROGRESS_UPDATES, ("reference", "link")),
    EmailKind("monthly_digest", Category.DIGESTS, ("organization", "month", "referrals", "seen", "mcid_rate")),
    EmailKind("consent_expiring", Category.STAFF_REMINDERS, ("count", "link")),
    EmailKind("checkin_due", Category.STAFF_REMINDERS, ("organization", "link")),
    EmailKind("partner_at_risk", Category.STAFF_REMINDERS, ("organization", "link", "previous", "current")),
    # The daily or weekly digest that carries held notices: always sent once built.
    EmailKind(DIGEST, None, ("period", "items")),
]

KINDS: dict[str, EmailKind] = {k.name: k for k in _KINDS}


class UnknownTemplate(ValueError):
    """enqueue() was given a template name the catalog does not know."""


def kind_of(template: str) -> EmailKind:
    try:
        return KINDS[template]
    except KeyError:
        raise UnknownTemplate(f"no e-mail template named {template!r} (see portal/notifications/catalog.py)") from None


def categories_for(role: Role) -> list[Category]:
    return [c for c in Category if Role(role) in c.roles]
