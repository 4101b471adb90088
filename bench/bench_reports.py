"""Partner organization report benchmark: one organization's report over 1,000 and 100,000 episodes. Prints markdown.

    .venv/bin/python -m bench.bench_reports                       # SQLite, plus PostgreSQL if reachable
    .venv/bin/python -m bench.bench_reports --sizes 1000 --pg none

The reported organization has N episodes (referrals) over two years, all inside the
report's date range (the worst case: nothing is filtered out by date); a second
organization adds N/4 more, so the organization filter has work to do. Per episode, like
the demo: the status timeline, two instruments with intake/interim/discharge scores when
discharged, visits attended, and an outcome-scores consent for 80% of patients. The
encrypted patient and referral columns hold placeholder bytes (the report never decrypts).
Each database is migrated with the real migrations, loaded with Core bulk inserts, then
ANALYZEd (PostgreSQL: VACUUM ANALYZE). Timing is the whole `partner_report()` call (six
SQL statements over the report facts and the Python that shapes them), best of 7, next to
a baseline measured in the same run: one bare COUNT over the same organization's episodes
in the range, the least any report over that cohort could cost. PostgreSQL: --pg URL (default $BENCH_DATABASE_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/portal_bench_reports; dropped and recreated).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.common import fresh_database

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/portal_bench_reports"
PLACEHOLDER = b"\x01" * 34
CHUNK = 20_000


def _config(url: str, instance: str) -> dict:
    return {
        "PORTAL_ENV": "test",
        "SECRET_KEY": "bench-" + "x" * 32,
        "PHI_KEK": "bench-kek-" + "y" * 32,
        "DATABASE_URL": url,
        "INSTANCE_PATH": instance,
        "RATELIMIT_ENABLED": False,
    }


def _fresh_database(url: str | None, tmp: Path, n: int) -> str:
    return fresh_database(url, tmp / f"bench_reports_{n}.db")


def _load(n: int, extra: int, today: date) -> int:
    """Bulk-load n episodes for the reported organization and ``extra`` for another; returns its id."""
    from sqlalchemy import insert, select

    from portal.accounts.models import User
    from portal.consent.models import Consent
    from portal.core.permissions import Role
    from portal.extensions import db
    from portal.outcomes.models import EpisodeVisits, Instrument, OutcomeScore
    from portal.partners.models import Organization, OrganizationKind
    from portal.patients.models import Patient
    from portal.referrals.models import Referral, ReferralEvent

    rng = random.Random(100_000)
    orgs = [Organization(name=f"Bench Org {i}", kind=OrganizationKind.ORTHOPEDICS) for i in range(2)]
    db.session.add_all(orgs)
    db.session.flush()
    clinician = User(
        email="bench-partner@example.com", full_name="Bench Partner", role=Role.PARTNER, organization_id=orgs[0].id
    )
    other = User(
        email="bench-other@example.com", full_name="Bench Other", role=Role.PARTNER, organization_id=orgs[1].id
    )
    staff = User(email="bench-staff@example.com", full_name="Bench Staff", role=Role.STAFF)
    db.session.add_all([clinician, other, staff])
    db.session.flush()
    instruments = {i.code: i.id for i in db.session.scalars(select(Instrument))}
    pairs = [("ODI", "NPRS"), ("LEFS", "NPRS"), ("QuickDASH", "NPRS"), ("NDI", "NPRS"), ("LEFS", "PSFS")]
    now = datetime.now(UTC)
    next_patient = next_referral = 1
    start_ids = {}
    for org, user, count in ((orgs[0], clinician, n), (orgs[1], other, extra)):
        done = 0
        while done < count:
            size = min(CHUNK, count - done)
            patients, referrals, events, scores, visits, consents = [], [], [], [], [], []
            for _ in range(size):
                pid, rid = next_patient, next_referral
                next_patient += 1
                next_referral += 1
                submitted = now - timedelta(days=rng.uniform(1, 720))
                patients.append(
                    {
                        "id": pid,
                        "public_id": uuid.uuid4(),
                        "us_state_ct": PLACEHOLDER,
                        "sex_ct": PLACEHOLDER,
                        "given_name_ct": PLACEHOLDER,
                        "family_name_ct": PLACEHOLDER,
                        "birth_date_ct": PLACEHOLDER,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                roll = rng.random()
                path = (
                    ["declined"]
                    if roll < 0.05
                    else ["accepted", "cancelled"]
                    if roll < 0.10
                    else []
                    if roll < 0.13
                    else ["accepted", "scheduled", "in_care"]
                    if roll < 0.20
                    else ["accepted", "scheduled", "in_care", "discharged"]
                )
                first_visit = submitted + timedelta(days=rng.uniform(2, 20)) if "scheduled" in path else None
                status = path[-1] if path else "submitted"
                referrals.append(
                    {
                        "id": rid,
                        "public_id": uuid.uuid4(),
                        "reference": f"BN-{rid:09d}",
                        "patient_id": pid,
                        "organization_id": org.id,
                        "clinician_id": user.id,
                        "submitted_by_id": user.id,
                        "requested_service": "evaluate_and_treat",
                        "urgency": "routine",
                        "visit_preference": "either",
                        "status": status,
                        "status_changed_at": submitted,
                        "submitted_at": submitted,
                        "first_visit_at": first_visit,
                        "reason_ct": PLACEHOLDER,
                        "icd10_codes_ct": PLACEHOLDER,
                        "created_at": now,
                        "updated_at": now,
                        "needs_duplicate_review": False,
                        "version": 1,
                    }
                )
                previous = None
                for step in ["submitted", *path]:
                    events.append(
                        {
                            "public_id": uuid.uuid4(),
                            "referral_id": rid,
                            "occurred_at": submitted,
                            "actor_id": user.id,
                            "kind": "submitted" if previous is None else "status",
                            "from_status": previous,
                            "to_status": step,
                        }
                    )
                    previous = step
                if rng.random() < 0.8:
                    consents.append(
                        {
                            "public_id": uuid.uuid4(),
                            "consent_key": uuid.uuid4(),
                            "version": 1,
                            "patient_id": pid,
                            "grantee_organization_id": org.id,
                            "allows_outcome_scores": True,
                            "allows_progress_notes": True,
                            "allows_discharge_summary": False,
                            "allows_story_publication": False,
                            "effective_on": submitted.date(),
                            "method": "electronic",
                            "status": "active",
                            "recorded_by_id": staff.id,
                            "recorded_at": submitted,
                        }
                    )
                if first_visit is not None and status in ("in_care", "discharged"):
                    for code in pairs[rid % len(pairs)]:
                        intake = rng.uniform(20, 60)
                        phases = [("intake", intake)]
                        if status == "discharged":
                            phases += [
                                ("interim", intake - rng.uniform(0, 10)),
                                ("discharge", intake - rng.uniform(-3, 25)),
                            ]
                        for phase, value in phases:
                            scores.append(
                                {
                                    "public_id": uuid.uuid4(),
                                    "referral_id": rid,
                                    "instrument_id": instruments[code],
                                    "phase": phase,
                                    "measured_on": first_visit.date(),
                                    "score": round(max(0.0, min(value, 50.0)), 1),
                                    "recorded_by_id": staff.id,
                                    "created_at": now,
                                    "updated_at": now,
                                }
                            )
                    if status == "discharged":
                        visits.append(
                            {
                                "public_id": uuid.uuid4(),
                                "referral_id": rid,
                                "visits": rng.randint(4, 20),
                                "recorded_by_id": staff.id,
                                "recorded_at": now,
                            }
                        )
            for model, rows in (
                (Patient, patients),
                (Referral, referrals),
                (ReferralEvent, events),
                (Consent, consents),
                (OutcomeScore, scores),
                (EpisodeVisits, visits),
            ):
                if rows:
                    db.session.execute(insert(model.__table__), rows)
            db.session.commit()
            done += size
        start_ids[org.id] = count
    from portal.outcomes import facts

    facts.rebuild(db.session)  # the bulk insert bypassed the ORM hook that keeps the report facts current
    db.session.commit()
    return orgs[0].id


def _analyze() -> None:
    """Planner statistics, and on PostgreSQL the visibility map (index-only scans), as autovacuum would leave them."""
    from sqlalchemy import text

    from portal.extensions import db

    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def _best(repeats: int, run) -> tuple[float, object]:
    """Best wall time of ``repeats`` runs, each ending its transaction as a request would."""
    from portal.extensions import db

    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
        db.session.rollback()
    return best, result


def measure(label: str, url: str | None, n: int, repeats: int) -> tuple[str, int, float, list]:
    from sqlalchemy import func, select

    from portal import create_app
    from portal.core.time import practice_today
    from portal.extensions import db
    from portal.outcomes.models import ReportEpisode
    from portal.outcomes.reports import DateRange, in_cohort, partner_report
    from portal.partners.models import Organization

    with tempfile.TemporaryDirectory() as tmp:
        db_url = _fresh_database(url, Path(tmp), n)
        app = create_app(_config(db_url, tmp))
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            started = time.perf_counter()
            today = practice_today()
            org_id = _load(n, n // 4, today)
            load_seconds = time.perf_counter() - started
            _analyze()
            results = []
            with app.test_request_context():
                period = DateRange(today - timedelta(days=730), today)
                for oid in (org_id, org_id + 1):
                    # Baseline: one bare pass over the organization's episodes in the range (a COUNT).
                    baseline, _ = _best(
                        repeats,
                        lambda oid=oid: db.session.scalar(
                            select(func.count()).select_from(ReportEpisode).where(in_cohort(oid, period))
                        ),
                    )
                    best, report = _best(
                        repeats, lambda oid=oid: partner_report(db.session.get(Organization, oid), period)
                    )
                    results.append((report.stages[0].count.value, best, baseline, report))
            db.session.remove()
            db.engine.dispose()
        return label, n, load_seconds, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="comma-separated episode counts")
    parser.add_argument("--repeats", type=int, default=7, help="best of N runs")
    parser.add_argument(
        "--pg", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG), help='PostgreSQL URL, or "none"'
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    rows = [
        "| database | episodes in the database | episodes of the reported organization | partner report, best of "
        f"{args.repeats} (ms) | baseline: one COUNT pass (ms) | report / baseline | sent / completed / median days |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    targets = [("SQLite (file, WAL)", None)] + ([("PostgreSQL", args.pg)] if args.pg != "none" else [])
    loads = []
    for label, url in targets:
        for n in sizes:
            try:
                name, size, load, results = measure(label, url, n, args.repeats)
            except Exception as exc:  # PostgreSQL not reachable: say so, keep the other figures
                rows.append(f"| {label} | {n + n // 4:,} | {n:,} | not run: {type(exc).__name__} | | | |")
                break
            loads.append(f"{name}, {size + size // 4:,} episodes: {load:,.1f} s")
            for episodes, best, baseline, report in sorted(results, key=lambda r: r[0]):
                rows.append(
                    f"| {name} | {size + size // 4:,} | {episodes:,} | {best * 1000:,.1f} | "
                    f"{baseline * 1000:,.2f} | {best / baseline:,.1f}x | "
                    f"{report.stages[0].count.value:,} / {report.completed.value:,} / "
                    f"{report.median_days_to_first_visit.value:.1f} |"
                )
    print(f"Partner report, {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPU(s):\n")
    print("\n".join(rows))
    print("\nBulk load (not part of the figures): " + "; ".join(loads) + ".")


if __name__ == "__main__":
    main()
