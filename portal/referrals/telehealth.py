"""Can the practice see this patient by telehealth? Licensure is data an admin edits."""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, select

from portal.core.time import practice_today
from portal.extensions import db
from portal.referrals.models import PracticeLicense


@dataclass(frozen=True)
class Eligibility:
    possible: bool
    reason: str


def telehealth_eligibility(us_state: str | None, on: date | None = None) -> Eligibility:
    on = on or practice_today()
    if not us_state:
        return Eligibility(False, "The patient's state is not known.")
    license_ = db.session.scalar(
        select(PracticeLicense)
        .where(
            PracticeLicense.us_state == us_state,
            PracticeLicense.effective_on <= on,
            or_(PracticeLicense.expires_on.is_(None), PracticeLicense.expires_on >= on),
        )
        .order_by(PracticeLicense.kind)
    )
    if license_ is not None:
        until = f" until {license_.expires_on:%b %-d, %Y}" if license_.expires_on else ""
        return Eligibility(True, f"Licensed in {us_state} ({license_.kind.label.lower()}{until}).")
    lapsed = db.session.scalar(select(PracticeLicense).where(PracticeLicense.us_state == us_state))
    if lapsed is not None:
        return Eligibility(
            False, f"The practice's {lapsed.kind.label.lower()} in {us_state} is not in effect on {on:%b %-d, %Y}."
        )
    return Eligibility(
        False, f"The practice holds no license or PT Compact privilege in {us_state}; an in-clinic visit is needed."
    )
