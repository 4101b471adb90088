"""Demo outcomes: hundreds of past episodes with plausible score trajectories, consents and a few stories.

Deterministic (fixed seeds). About two thirds of completed episodes reach the MCID, the
rest improve less or not at all; Summit Sports Medicine's referrals fall away in the last
90 days, so the staff analytics has a partner to call. Adds and flushes only.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from portal.accounts.models import User
from portal.consent.models import Consent, Method
from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.extensions import db
from portal.outcomes.models import EpisodeVisits, Instrument, OutcomeScore, Phase
from portal.partners.models import Organization
from portal.patients.demo import demo_patient
from portal.referrals.demo import CASES, _business_hours
from portal.referrals.lifecycle import Status
from portal.referrals.models import AppointmentMode, EventKind, Referral, ReferralEvent, Urgency, VisitPreference
from portal.stories.models import Condition, Story, StoryState

FIRST_INDEX = 40  # the lead's demo has patients 0-39
EPISODES = 420
# Instruments used for each of referrals.demo.CASES, and the story condition of each.
CASE_INSTRUMENTS = [
    ("ODI", "NPRS"),
    ("LEFS", "NPRS"),
    ("QuickDASH", "NPRS"),
    ("NDI", "NPRS"),
    ("PSFS",),
    ("LEFS", "PSFS"),
    ("LEFS", "NPRS"),
    ("LEFS", "PSFS"),
]
CASE_CONDITIONS = [
    Condition.BACK,
    Condition.KNEE,
    Condition.SHOULDER,
    Condition.NECK,
    Condition.VESTIBULAR,
    Condition.FOOT_ANKLE,
    Condition.POST_OPERATIVE,
    Condition.SPORTS,
]
# (organization, share of referrals, the cases it tends to send)
SOURCES = [
    ("Lakeside Orthopedics", 0.45, [0, 1, 2, 6, 7]),
    ("Maple Street Primary Care", 0.32, [0, 2, 3, 5]),
    ("Summit Sports Medicine", 0.23, [1, 4, 5, 7]),
]
FALLING_AWAY = "Summit Sports Medicine"
# Typical intake bands (share of the range, "bad" end first) per instrument.
INTAKE_BAND = {
    "NPRS": (0.5, 0.85),
    "ODI": (0.3, 0.6),
    "LEFS": (0.25, 0.55),
    "PSFS": (0.2, 0.45),
    "QuickDASH": (0.35, 0.65),
    "NDI": (0.3, 0.55),
}

STORIES = [
    (
        "Back to the garden",
        Condition.BACK,
        "ODI 46 → 14 in 9 weeks",
        "After months of back pain that made bending impossible, this patient set one goal at intake: "
        "*plant the spring garden*.\n\nTwice-weekly sessions combined graded lifting practice with a home "
        "program.\n\n- Week 3: walking 30 minutes without a flare\n- Week 6: lifting a bag of soil safely\n"
        "- Week 9: discharged, garden planted\n\n> “I stopped being afraid of moving.”",
    ),
    (
        "Running again after ACL reconstruction",
        Condition.KNEE,
        "LEFS 28 → 71 in 16 weeks",
        "A recreational runner came to us two weeks after surgery. Strength testing guided each phase, "
        "from quadriceps activation to hopping tests.\n\nAt discharge the patient passed the return-to-run "
        "criteria and finished a **5 km** run pain-free a month later.",
    ),
    (
        "Reaching the top shelf",
        Condition.SHOULDER,
        "QuickDASH 59 → 18 in 8 weeks",
        "Shoulder pain had stopped this patient from reaching overhead at work. Eight weeks of progressive "
        "loading and posture work later, lifting boxes onto high shelves is part of an ordinary day again.",
    ),
    (
        "Headaches under control",
        Condition.NECK,
        "NDI 24 → 8 in 7 weeks",
        "Neck pain and headaches followed a car accident. Manual therapy and a home exercise program brought "
        "the headaches from daily to rare, and full days at the computer are comfortable again.",
    ),
    (
        "Steady on the stairs",
        Condition.SPORTS,
        "LEFS 34 → 69 in 6 weeks",
        "A lateral ankle sprain left this basketball player unsure on stairs, let alone the court. Balance "
        "and hop training restored confidence; the patient is back in the weekly league.",
    ),
]


@dataclass
class _Context:
    rng: random.Random
    staff: list[User]
    instruments: dict[str, Instrument]
    today: date


def seed_demo_outcomes() -> int:
    """Add the demo episodes, scores, consents and stories; flush; return how many episodes were added."""
    orgs = {o.name: o for o in db.session.scalars(select(Organization))}
    staff = list(db.session.scalars(select(User).where(User.role == Role.STAFF).order_by(User.id)))
    instruments = {i.code: i for i in db.session.scalars(select(Instrument))}
    if not staff or not instruments or any(name not in orgs for name, _, _ in SOURCES):
        return 0
    ctx = _Context(random.Random(6_2026), staff, instruments, now_utc().date())
    clinicians = {
        name: list(db.session.scalars(select(User).where(User.organization_id == orgs[name].id).order_by(User.id)))
        for name, _, _ in SOURCES
    }
    existing = list(
        db.session.scalars(
            select(Referral).where(Referral.status.in_([Status.IN_CARE, Status.DISCHARGED])).order_by(Referral.id)
        )
    )
    for i, referral in enumerate(existing):  # the lead's demo episodes get scores too
        _scores(ctx, referral, CASE_INSTRUMENTS[i % len(CASES)], referral.status is Status.DISCHARGED)
        _consent(ctx, referral, story=False)
    added = []
    for n in range(EPISODES):
        name, case_ids = _pick_source(ctx.rng)
        submitted = _submission_time(ctx, name)
        if submitted is None:
            continue
        case_index = ctx.rng.choice(case_ids)
        referral = _episode(ctx, FIRST_INDEX + n, orgs[name], clinicians[name], case_index, submitted)
        added.append((referral, case_index))
    db.session.flush()
    story_candidates = []
    for referral, case_index in added:
        if referral.status in (Status.IN_CARE, Status.DISCHARGED):
            _scores(ctx, referral, CASE_INSTRUMENTS[case_index], referral.status is Status.DISCHARGED)
        if ctx.rng.random() < 0.82:
            wants_story = referral.status is Status.DISCHARGED and ctx.rng.random() < 0.15
            _consent(ctx, referral, story=wants_story)
            if wants_story:
                story_candidates.append((referral, CASE_CONDITIONS[case_index]))
    _stories(ctx, story_candidates)
    db.session.flush()
    return len(added)


def _pick_source(rng: random.Random) -> tuple[str, list[int]]:
    roll, total = rng.random(), 0.0
    for name, share, cases in SOURCES:
        total += share
        if roll < total:
            return name, cases
    return SOURCES[-1][0], SOURCES[-1][2]


def _submission_time(ctx: _Context, source: str) -> datetime | None:
    days_ago = ctx.rng.randint(1, 540)
    if source == FALLING_AWAY and days_ago <= 90 and ctx.rng.random() < 0.85:
        return None  # this partner has all but stopped referring
    return now_utc() - timedelta(days=days_ago, hours=ctx.rng.randint(0, 9))


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour, 0), tzinfo=UTC)


def _episode(
    ctx: _Context, index: int, org: Organization, clinicians: list[User], case_index: int, submitted: datetime
) -> Referral:
    rng = ctx.rng
    patient = demo_patient(index)
    db.session.add(patient)
    clinician = clinicians[index % len(clinicians)]
    reason, diagnosis, codes, service = CASES[case_index]
    referral = Referral(
        patient=patient,
        organization_id=org.id,
        clinician_id=clinician.id,
        submitted_by_id=clinician.id,
        clinician_npi=clinician.npi,
        requested_service=service,
        urgency=Urgency.URGENT if rng.random() < 0.15 else Urgency.ROUTINE,
        visit_preference=rng.choice(list(VisitPreference)),
        submitted_at=submitted,
        status=Status.SUBMITTED,
        status_changed_at=submitted,
    )
    referral.public_id = uuid.uuid4()
    referral.reason, referral.diagnosis, referral.icd10_codes = reason, diagnosis, codes
    events = [_event(clinician, None, Status.SUBMITTED, submitted)]
    now = now_utc()
    path = _path(rng, (now - submitted).days)
    at, previous = submitted, Status.SUBMITTED
    for step in path:
        if step is Status.SCHEDULED:
            at += timedelta(days=rng.randint(1, 2), hours=rng.randint(1, 5))
            referral.first_visit_at = _business_hours(at + timedelta(days=rng.randint(2, 12), hours=rng.randint(0, 6)))
            referral.appointment_mode = AppointmentMode.TELEHEALTH if rng.random() < 0.2 else AppointmentMode.IN_CLINIC
        elif step is Status.IN_CARE:
            at = referral.first_visit_at
        elif step is Status.DISCHARGED:
            at = referral.first_visit_at + timedelta(weeks=rng.randint(5, 11))
        else:
            at += timedelta(days=rng.randint(1, 3), hours=rng.randint(1, 5))
        if at > now:
            break
        events.append(
            _event(
                rng.choice(ctx.staff),
                previous,
                step,
                at,
                "Patient chose a clinic closer to home."
                if step is Status.CANCELLED
                else "Needs a surgical consult first."
                if step is Status.DECLINED
                else None,
            )
        )
        previous, referral.status, referral.status_changed_at = step, step, at
    referral.events = events
    db.session.add(referral)
    return referral


def _path(rng: random.Random, age_days: int) -> list[Status]:
    roll = rng.random()
    full = [Status.ACCEPTED, Status.SCHEDULED, Status.IN_CARE, Status.DISCHARGED]
    if roll < 0.06:
        return [Status.DECLINED]
    if roll < 0.11:
        return [Status.ACCEPTED, Status.CANCELLED]
    if roll < 0.15:
        return [Status.ACCEPTED, Status.SCHEDULED, Status.NO_SHOW, Status.CANCELLED]
    if roll < 0.19 and age_days > 100:
        return full[:3]  # a long episode still in care
    return full


def _event(actor: User, from_status: Status | None, to_status: Status, at: datetime, note: str | None = None):
    event = ReferralEvent(
        actor_id=actor.id,
        kind=EventKind.SUBMITTED if from_status is None else EventKind.STATUS,
        from_status=from_status,
        to_status=to_status,
        occurred_at=at,
    )
    event.note = note
    return event


def _scores(ctx: _Context, referral: Referral, codes: tuple[str, ...], discharged: bool) -> None:
    """Intake at the first visit, interim every few weeks, discharge at the end (if discharged)."""
    rng = ctx.rng
    if referral.first_visit_at is None:
        return
    start = referral.first_visit_at.date()
    end = referral.status_changed_at.date() if discharged else min(ctx.today, start + timedelta(weeks=12))
    if end <= start:
        end = start + timedelta(days=1)
    recorder = ctx.staff[referral.id % len(ctx.staff)]
    responder = rng.random()  # shared across the episode's instruments: patients improve as a whole
    for code in codes:
        instrument = ctx.instruments.get(code)
        if instrument is None:
            continue
        span = instrument.max_score - instrument.min_score
        low, high = INTAKE_BAND[code]
        badness = rng.uniform(low, high)
        intake = (
            instrument.min_score + span * (1 - badness)
            if instrument.is_higher_better
            else instrument.min_score + span * badness
        )
        # Improvement at discharge as multiples of the MCID: most clear it, some fall short, a few worsen.
        gain = (
            rng.uniform(1.1, 3.2)
            if responder < 0.66
            else rng.uniform(0.2, 0.95)
            if responder < 0.92
            else rng.uniform(-0.6, 0.1)
        ) * instrument.mcid
        dates = [start] + _interim_dates(rng, start, end) + ([end] if discharged else [])
        for k, day in enumerate(dates):
            phase = Phase.INTAKE if k == 0 else Phase.DISCHARGE if discharged and k == len(dates) - 1 else Phase.INTERIM
            progress = (day - start).days / max((end - start).days, 1)
            change = gain * (progress**0.7) + rng.uniform(-0.15, 0.15) * instrument.mcid * (k > 0)
            value = intake + change if instrument.is_higher_better else intake - change
            value = min(max(value, instrument.min_score), instrument.max_score)
            step = 1 if code in ("NPRS", "NDI", "LEFS") else 2 if code == "ODI" else 0.1 if code == "PSFS" else 2.3
            value = round(round(value / step) * step, 1)
            db.session.add(
                OutcomeScore(
                    referral_id=referral.id,
                    instrument_id=instrument.id,
                    phase=phase,
                    measured_on=day,
                    score=value,
                    recorded_by_id=recorder.id,
                )
            )
    if discharged:
        weeks = max((end - start).days // 7, 1)
        db.session.add(
            EpisodeVisits(
                referral_id=referral.id,
                visits=max(3, min(weeks * 2 + rng.randint(-2, 2), 24)),
                recorded_by_id=recorder.id,
                recorded_at=_at(end, 18),
            )
        )


def _interim_dates(rng: random.Random, start: date, end: date) -> list[date]:
    days = (end - start).days
    count = 0 if days < 14 else 1 if days < 42 else 2
    return sorted({start + timedelta(days=rng.randint(10, days - 4)) for _ in range(count)}) if count else []


def _consent(ctx: _Context, referral: Referral, *, story: bool) -> None:
    consent = Consent(
        consent_key=uuid.uuid4(),
        version=1,
        patient_id=referral.patient_id,
        grantee_organization_id=referral.organization_id,
        method=Method.ELECTRONIC,
        effective_on=referral.submitted_at.date(),
        recorded_by_id=ctx.staff[0].id,
        allows_progress_notes=True,
        allows_outcome_scores=True,
        allows_story_publication=story,
        allows_discharge_summary=ctx.rng.random() < 0.5,
        recorded_at=referral.submitted_at,
    )
    consent.public_id = uuid.uuid4()
    db.session.add(consent)


def _stories(ctx: _Context, candidates: list[tuple[Referral, Condition]]) -> None:
    """One published story per written example, for a patient whose consent allows publication."""
    used = set()
    for title, condition, highlight, body in STORIES:
        match = next((r for r, c in candidates if c is condition and r.id not in used), None) or next(
            (r for r, _ in candidates if r.id not in used), None
        )
        if match is None:
            return
        used.add(match.id)
        story = Story(
            patient_id=match.patient_id,
            author_id=ctx.staff[-1].id,
            condition=condition,
            state=StoryState.PUBLISHED,
            published_at=match.status_changed_at + timedelta(days=14),
        )
        story.title, story.highlight, story.body_markdown = title, highlight, body
        db.session.add(story)
