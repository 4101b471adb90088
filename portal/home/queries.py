"""What the staff home page counts: the work waiting in each queue, and the partner network."""

from sqlalchemy import func, select

from portal.accounts.models import User
from portal.consent.policy import expiring_count
from portal.core.time import practice_today
from portal.extensions import db
from portal.partners.queries import organization_count
from portal.progress.services import approval_count
from portal.referrals.queries import status_counts, urgent_waiting


def staff_today(user: User) -> dict:
    return {
        "counts": status_counts(user),
        "urgent": urgent_waiting(user),
        "approvals": approval_count(user),
        "expiring": expiring_count(practice_today(), 30),
        "partner_count": organization_count(),
        "partner_users": db.session.scalar(
            select(func.count()).select_from(User).where(User.organization_id.is_not(None))
        ),
    }
