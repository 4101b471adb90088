"""The practice's telehealth licensure: its home-state license and PT Compact privileges (admin)."""

import uuid
from datetime import date

from sqlalchemy import select

from portal.audit.services import AuditAction, record
from portal.extensions import db
from portal.referrals.models import LicenseKind, PracticeLicense


def licenses() -> list[PracticeLicense]:
    return list(db.session.scalars(select(PracticeLicense).order_by(PracticeLicense.us_state)))


def get_license_or_404(public_id: uuid.UUID) -> PracticeLicense:
    return db.first_or_404(select(PracticeLicense).where(PracticeLicense.public_id == public_id))


def add_license(
    actor, *, us_state: str, kind: LicenseKind, effective_on: date, expires_on: date | None
) -> PracticeLicense:
    license_ = PracticeLicense(us_state=us_state, kind=kind, effective_on=effective_on, expires_on=expires_on)
    db.session.add(license_)
    db.session.flush()
    record(AuditAction.LICENSE_CHANGED, actor=actor, obj=license_, change="added")
    return license_


def remove_license(actor, license_: PracticeLicense) -> None:
    record(AuditAction.LICENSE_CHANGED, actor=actor, obj=license_, change="removed")
    db.session.delete(license_)
