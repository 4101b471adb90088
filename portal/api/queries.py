"""What an API client may read: the portal's own scoped queries and consent policy, nothing new.

Referrals come from visible_referrals, outcome scores from visible_scores, progress updates from
visible_updates; consents are those the policy counts today for the client's organization.
Patients come from visible_patients (those the organization referred), with the identifiers its own EHR sent;
practitioners are the organization's clinicians named by its referrals; organizations are its own and the
practice; subscriptions are the client's own. Anything else is None, which the views answer with 404.
"""

import uuid
from datetime import date

from sqlalchemy import Select, exists, or_, select

from portal.accounts.models import User
from portal.api.fhir.resources import Extras
from portal.api.models import OrderIdentifier, PatientIdentifier, ReferralDetail, Subscription, SubscriptionDelivery
from portal.consent.models import Category, Consent
from portal.consent.policy import consent_in_effect
from portal.core.time import practice_today
from portal.extensions import db
from portal.outcomes.models import OutcomeScore
from portal.outcomes.queries import visible_scores
from portal.partners.models import Organization
from portal.patients.models import Patient
from portal.progress.models import ProgressUpdate
from portal.progress.queries import visible_updates
from portal.referrals.models import Referral
from portal.referrals.queries import visible_patients, visible_referrals

DISCLOSED_CATEGORIES = (Category.PROGRESS_NOTES, Category.OUTCOME_SCORES, Category.DISCHARGE_SUMMARY)


def referral(actor, public_id: uuid.UUID) -> Referral | None:
    return db.session.scalar(visible_referrals(actor).where(Referral.public_id == public_id))


def referrals(actor) -> Select:
    return visible_referrals(actor)


def score(actor, public_id: uuid.UUID) -> OutcomeScore | None:
    return db.session.scalar(visible_scores(actor).where(OutcomeScore.public_id == public_id))


def scores(actor) -> Select:
    return visible_scores(actor)


def update(actor, public_id: uuid.UUID) -> ProgressUpdate | None:
    return db.session.scalar(visible_updates(actor).where(ProgressUpdate.public_id == public_id))


def updates(actor) -> Select:
    return visible_updates(actor)


def visible_consents(actor, on: date | None = None) -> Select:
    """Consents in effect today that grant this organization a data class, for patients it referred."""
    on = on or practice_today()
    referred = exists(
        select(Referral.id).where(
            Referral.patient_id == Consent.patient_id, Referral.organization_id == actor.organization_id
        )
    )
    return select(Consent).where(referred, or_(*[consent_in_effect(actor, c, on) for c in DISCLOSED_CATEGORIES]))


def consent(actor, public_id: uuid.UUID) -> Consent | None:
    return db.session.scalar(visible_consents(actor).where(Consent.public_id == public_id))


# --- patients and the parties of a referral ------------------------------------------------------


def patient(actor, public_id: uuid.UUID) -> Patient | None:
    return db.session.scalar(visible_patients(actor).where(Patient.public_id == public_id))


def patients(actor) -> Select:
    return visible_patients(actor)


def patient_identifiers(actor, patient_ids: list[int]) -> dict[int, list[dict]]:
    """patient id -> the identifiers the actor's organization's EHR sent for that patient (decrypted)."""
    found: dict[int, list[dict]] = {pid: [] for pid in patient_ids}
    if not patient_ids:
        return found
    rows = db.session.scalars(
        select(PatientIdentifier)
        .where(
            PatientIdentifier.patient_id.in_(patient_ids), PatientIdentifier.organization_id == actor.organization_id
        )
        .order_by(PatientIdentifier.id)
    )
    seen = set()
    for row in rows:
        key = (row.patient_id, row.system, row.value)
        if key not in seen:  # the same MRN sent with two referrals is one identifier
            seen.add(key)
            found[row.patient_id].append({"system": row.system, "value": row.value, "type": row.type_code})
    return found


def referral_extras(actor, referral_ids: list[int]) -> dict[int, Extras]:
    """referral id -> what the actor's organization's EHR sent with it beyond the form (one query per table)."""
    extras = {rid: Extras() for rid in referral_ids}
    if not referral_ids:
        return extras
    for row in db.session.scalars(
        select(OrderIdentifier)
        .where(OrderIdentifier.referral_id.in_(referral_ids), OrderIdentifier.organization_id == actor.organization_id)
        .order_by(OrderIdentifier.id)
    ):
        extras[row.referral_id].order_identifiers.append(
            {"system": row.system, "value": row.value, "type": row.type_code}
        )
    for row in db.session.scalars(
        select(ReferralDetail).where(
            ReferralDetail.referral_id.in_(referral_ids), ReferralDetail.organization_id == actor.organization_id
        )
    ):
        extras[row.referral_id].details = row.content
    return extras


def clinicians(actor) -> Select:
    """The organization's clinicians who referred or submitted one of its referrals."""
    named = select(Referral.id).where(
        Referral.organization_id == actor.organization_id,
        or_(Referral.clinician_id == User.id, Referral.submitted_by_id == User.id),
    )
    return select(User).where(User.organization_id == actor.organization_id, exists(named))


def clinician(actor, public_id: uuid.UUID) -> User | None:
    return db.session.scalar(clinicians(actor).where(User.public_id == public_id))


def organization(actor, public_id: uuid.UUID) -> Organization | None:
    """Only the client's own organization (the practice is Organization/practice, served without a row)."""
    return db.session.scalar(
        select(Organization).where(Organization.public_id == public_id, Organization.id == actor.organization_id)
    )


# --- subscriptions -------------------------------------------------------------------------------


def subscriptions(actor) -> Select:
    """The client's own subscriptions (not those of another client of the same organization)."""
    return select(Subscription).where(Subscription.client_id == actor.client.id)


def subscription(actor, public_id: uuid.UUID) -> Subscription | None:
    return db.session.scalar(subscriptions(actor).where(Subscription.public_id == public_id))


def last_delivery(item: Subscription) -> SubscriptionDelivery | None:
    return db.session.scalar(
        select(SubscriptionDelivery)
        .where(SubscriptionDelivery.subscription_id == item.id, SubscriptionDelivery.kind == "event-notification")
        .order_by(SubscriptionDelivery.event_number.desc())
        .limit(1)
    )


# --- staff: what the EHR sent, on the referral page ----------------------------------------------


def staff_view(referral_id: int) -> dict | None:
    """What an EHR sent with this referral beyond the form, for the practice's staff (None for web referrals)."""
    detail = db.session.scalar(select(ReferralDetail).where(ReferralDetail.referral_id == referral_id))
    orders = list(db.session.scalars(select(OrderIdentifier).where(OrderIdentifier.referral_id == referral_id)))
    referral_row = db.session.get(Referral, referral_id)
    mrns = []
    if referral_row is not None:
        mrns = list(
            db.session.scalars(
                select(PatientIdentifier).where(
                    PatientIdentifier.patient_id == referral_row.patient_id,
                    PatientIdentifier.organization_id == referral_row.organization_id,
                )
            )
        )
    if detail is None and not orders and not mrns:
        return None
    return {
        "details": detail.content if detail else {},
        "order_identifiers": [{"system": o.system, "value": o.value, "type": o.type_code} for o in orders],
        "patient_identifiers": [{"system": i.system, "value": i.value, "type": i.type_code} for i in mrns],
    }
