"""Scoped patient loading: a partner reaches only patients their organization referred."""
import uuid

from sqlalchemy import exists, select

from portal.accounts.models import User
from portal.extensions import db
from portal.patients.models import Patient
from portal.referrals.models import Referral


def visible_patients(user: User):
    query = select(Patient)
    if user.role.is_partner:
        query = query.where(exists(select(Referral.id).where(
            Referral.patient_id == Patient.id, Referral.organization_id == user.organization_id)))
    return query


def get_patient_or_404(user: User, public_id: uuid.UUID) -> Patient:
    return db.first_or_404(visible_patients(user).where(Patient.public_id == public_id))
