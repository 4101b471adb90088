"""Demo referrals: every organization has some, in every state of the lifecycle."""

import random
import uuid
from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from portal.accounts.models import User
from portal.core.permissions import Role
from portal.core.time import now_utc, practice_to_utc, practice_today, practice_zone
from portal.extensions import db
from portal.patients.models import Patient
from portal.referrals.lifecycle import Status
from portal.referrals.models import (
    AppointmentMode,
    EventKind,
    LicenseKind,
    PracticeLicense,
    Referral,
    ReferralEvent,
    Service,
    Urgency,
    VisitPreference,
)

# The path each final status takes through the lifecycle.
PATHS = {
    Status.SUBMITTED: [],
    Status.ACCEPTED: [Status.ACCEPTED],
    Status.DECLINED: [Status.DECLINED],
    Status.SCHEDULED: [Status.ACCEPTED, Status.SCHEDULED],
    Status.NO_SHOW: [Status.ACCEPTED, Status.SCHEDULED, Status.NO_SHOW],
    Status.IN_CARE: [Status.ACCEPTED, Status.SCHEDULED, Status.IN_CARE],
    Status.DISCHARGED: [Status.ACCEPTED, Status.SCHEDULED, Status.IN_CARE, Status.DISCHARGED],
    Status.CANCELLED: [Status.CANCELLED],
}
NOTES = {
    Status.DECLINED: "Needs a surgical consult first; we called the office.",
    Status.CANCELLED: "Patient chose a clinic closer to home.",
}
CASES = [
    (
        "Low back pain with right-sided sciatica for 6 weeks.",
        "Lumbar radiculopathy",
        ["M54.16", "M54.31"],
        Service.SPINE_PROGRAM,
    ),
    (
        "Right knee pain after ACL reconstruction, 2 weeks post-op.",
        "ACL reconstruction",
        ["S83.511A", "Z48.89"],
        Service.POST_OPERATIVE,
    ),
    (
        "Left shoulder pain and weakness reaching overhead.",
        "Rotator cuff tendinopathy",
        ["M75.102"],
        Service.EVALUATE_AND_TREAT,
    ),
    (
        "Neck pain with headaches after a car accident.",
        "Cervical strain",
        ["S13.4XXA", "M54.2"],
        Service.EVALUATE_AND_TREAT,
    ),
    ("Recurrent dizziness when turning in bed.", "Suspected BPPV", ["H81.10"], Service.VESTIBULAR),
    ("Running-related heel pain, worse in the morning.", "Plantar fasciitis", ["M72.2"], Service.SPORTS_REHAB),
    ("Total knee replacement 3 weeks ago; stiffness.", "Right TKA", ["Z96.651", "Z47.1"], Service.POST_OPERATIVE),
    (
        "Ankle sprain playing basketball; unstable on stairs.",
        "Lateral ankle sprain",
        ["S93.401A"],
        Service.SPORTS_REHAB,
    ),
]


def seed_demo_licensure() -> None:
    today = practice_today()
    db.session.add_all(
        [
            PracticeLicense(us_state="WI", kind=LicenseKind.HOME, effective_on=date(2015, 1, 1)),
            PracticeLicense(
                us_state="IA",
                kind=LicenseKind.COMPACT,
                effective_on=date(2022, 3, 1),
                expires_on=today + timedelta(days=300),
            ),
            PracticeLicense(
                us_state="MN",
                kind=LicenseKind.COMPACT,
                effective_on=date(2021, 6, 1),
                expires_on=today - timedelta(days=20),
            ),  # lapsed: shows the "why not"
        ]
    )


def seed_demo_referrals(patients: list[Patient]) -> list[Referral]:
    """Spread referrals over the partner organizations, with timelines; flush only."""
    rng = random.Random(20261126)
    staff = db.session.scalars(select(User).where(User.role == Role.STAFF).order_by(User.id)).all()
    partners = db.session.scalars(
        select(User).where(User.role.in_([Role.PARTNER, Role.PARTNER_ADMIN])).order_by(User.id)
    ).all()
    statuses = list(PATHS)
    referrals = []
    for i, patient in enumerate(patients):
        clinician = partners[i % len(partners)]
        final = statuses[i % len(statuses)]
        reason, diagnosis, codes, service = CASES[i % len(CASES)]
        submitted_at = now_utc() - timedelta(days=rng.randint(len(PATHS[final]) * 4 + 1, 120), hours=rng.randint(0, 8))
        referral = Referral(
            patient=patient,
            organization_id=clinician.organization_id,
            clinician_id=clinician.id,
            submitted_by_id=clinician.id,
            clinician_npi=clinician.npi,
            requested_service=service,
            urgency=Urgency.URGENT if i % 5 == 0 else Urgency.ROUTINE,
            visit_preference=list(VisitPreference)[i % 3],
            submitted_at=submitted_at,
            status=final,
            status_changed_at=submitted_at,
        )
        referral.public_id = uuid.uuid4()
        referral.reason, referral.diagnosis, referral.icd10_codes = reason, diagnosis, codes
        events = [_event(clinician, EventKind.SUBMITTED, None, Status.SUBMITTED, submitted_at)]
        at, previous = submitted_at, Status.SUBMITTED
        for step in PATHS[final]:
            at = at + timedelta(days=rng.randint(1, 4), hours=rng.randint(1, 6))
            if step is Status.SCHEDULED:
                referral.first_visit_at = _business_hours(at + timedelta(days=rng.randint(2, 7)))
                referral.appointment_mode = AppointmentMode.TELEHEALTH if i % 4 == 0 else AppointmentMode.IN_CLINIC
            events.append(_event(staff[i % len(staff)], EventKind.STATUS, previous, step, at, NOTES.get(step)))
            previous, referral.status_changed_at = step, at
        if final is Status.SCHEDULED and referral.first_visit_at < now_utc():
            referral.first_visit_at = _business_hours(
                now_utc() + timedelta(days=rng.randint(1, 10), hours=rng.randint(0, 6))
            )
        referral.events = events
        db.session.add(referral)
        referrals.append(referral)
    db.session.flush()
    return referrals


def _business_hours(at: datetime) -> datetime:
    """A visit slot on the practice's working day of ``at`` (weekends move to Monday), 8:00 to 16:45
    practice time on the quarter hour, as UTC: demo appointments are never at 2:15 AM (issue 15).
    Derived from ``at`` alone, so the demo's random sequence (and so its data) stays as it was."""
    local = at.astimezone(practice_zone())
    day = local.date()
    while day.weekday() >= 5:
        day += timedelta(days=1)
    slot = time(8 + (local.hour + local.day) % 9, local.minute // 15 * 15)
    return practice_to_utc(datetime.combine(day, slot))


def _event(actor, kind, from_status, to_status, at, note=None) -> ReferralEvent:
    event = ReferralEvent(actor_id=actor.id, kind=kind, from_status=from_status, to_status=to_status, occurred_at=at)
    event.note = note
    return event
