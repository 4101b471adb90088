"""Pages under load: the portal and a hello-world Flask app, each served by gunicorn like `make run`. Prints markdown.

    .venv/bin/python -m bench.bench_pages                              # SQLite, then PostgreSQL if reachable
    .venv/bin/python -m bench.bench_pages --seconds 3 --pg none        # quick, SQLite only
    .venv/bin/python -m bench.bench_pages --scale                      # also 1,000 vs 200,000 / 1,000,000 referrals
    .venv/bin/python -m bench.bench_pages --scale --sizes 1000,20000 --seconds 3

Servers. Every server is gunicorn with the portal's settings (`--config gunicorn.conf.py`: two
workers of two gthread threads, access log on), bound to a free loopback port with --bind.
Load comes from wrk: 2 threads, --connections keep-alive connections (default 32), --seconds
per run (default 10) after an uncounted --warmup run (default 1 s), --timeout 60s so that slow
answers count in the latencies instead of vanishing as timeouts. bench/pages.lua counts the
answers by status and prints wrk's figures as JSON. A keep-alive connection stays with the
worker that accepted it, and how wrk's connections split between the two workers is luck (32/0
as often as 16/16), which moves p50 by up to 2x: once wrk has connected, `ss` shows the split,
and an uneven start is stopped and started again (see _wrk and docs/benchmarks.md).

1. Baseline: bench/hello_wsgi.py, a Flask app answering "Hello, World!", measured before the
   portal on each database. The ratios (page req/s / hello req/s, page p99 / hello p99) compare
   with it in the same run on the same machine.
2. The portal (tests/live_wsgi.py with PORTAL_ENV=test, as the live tests in tests/live.py serve
   it) on a freshly migrated database with the demo data, CSRF protection on, RATELIMIT_ENABLED
   false (the token endpoint allows 60 requests a minute per address, and every request here
   comes from 127.0.0.1). Sessions sign in with `requests` like a browser, the staff member with
   the demo authenticator code; wrk sends their `portal_session` cookie. One at a time: the
   partner home /partner/ (partner@lakeside-ortho.example), a referral page of that
   organization, the staff intake queue /staff/referrals/ (staff@riverbend-pt.example), the
   staff page of that referral's patient, a FHIR Task search (GET /fhir/Task with the bearer
   token of a client registered for the partner's organization) and the token endpoint (POST
   /fhir/auth/token; RS384 client assertions signed before the run, each with its own jti, each
   sent once).
3. Mixed: about 10% of requests submit a referral (POST /partner/referrals/new with the form's
   CSRF token and a new patient name each time), the rest read the first five pages in equal
   parts. Afterwards the referrals stored are counted against the submissions answered 302.
4. `flask audit seal` and `flask audit verify` on every benchmark database after its runs.
5. --scale: the six pages again, each size on a fresh database: the demo data plus bulk-loaded
   referrals up to N in all (default 1,000 and 200,000 on SQLite, 1,000 and 1,000,000 on
   PostgreSQL; --sizes sets both), spread over the demo's three active partner organizations and
   three more. 86.5% are discharged, 8.5% declined or cancelled (30 days to 3 years old), 5% open
   (1.5% waiting in the intake queue, all under 60 days old). Each has its own patient with real
   ciphertext (names, birth date, phone) and blind indexes, real ciphertext for its reason and
   codes, and its "submitted" timeline row. Then the report facts are rebuilt (what `flask reports
   rebuild` runs) and the database is ANALYZEd (PostgreSQL: VACUUM ANALYZE). The figure: each
   page's p50 at the largest size over its p50 at the smallest (target: at most 1.5x).

PostgreSQL: --pg URL (default $BENCH_DATABASE_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/portal_bench_pages; dropped and recreated for each
served database, so the last one stays for inspection), or --pg none. SQLite databases and the
servers' logs live in a temporary directory that goes at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode, urlsplit

import requests

from bench.common import fresh_database

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/portal_bench_pages"
SQLITE_SIZES = (1_000, 200_000)
PG_SIZES = (1_000, 1_000_000)
TARGET_RATIO = 1.5  # p50 at the largest size over p50 at the smallest
ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
LUA = Path(__file__).with_name("pages.lua")
WRK_THREADS = 2
WORKERS = int(os.environ.get("WEB_CONCURRENCY", "2"))  # as gunicorn.conf.py reads it
BALANCE_ATTEMPTS = 30
PARTNER = "partner@lakeside-ortho.example"
STAFF = "staff@riverbend-pt.example"
ADMIN = "admin@riverbend-pt.example"
TOKEN_PATH = "/fhir/auth/token"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ASSERTIONS_PER_SECOND = 1_000  # signed per second of a token run: several times what one host serves
SPARE_SECONDS = 8
NAME_PLACEHOLDER = "NAMEHERE"  # bench/pages.lua writes a fresh family name here in each submission
SUBMISSION_WEIGHT, READ_WEIGHT = 10, 18  # mixed run: 10% submissions, five reads of 18% each
CHUNK = 20_000

# Final status of a bulk-loaded referral: mostly old and closed, 5% open, 1.5% waiting for intake.
STATUS_MIX = {
    "discharged": 0.865,
    "declined": 0.04,
    "cancelled": 0.045,
    "submitted": 0.015,
    "accepted": 0.005,
    "scheduled": 0.01,
    "in_care": 0.015,
    "no_show": 0.005,
}
OPEN = {"submitted", "accepted", "scheduled", "in_care", "no_show"}
EXTRA_ORGANIZATIONS = [
    ("Bench Valley Family Medicine", "primary_care"),
    ("Bench Spine Associates", "orthopedics"),
    ("Bench Works Employer Health", "employer"),
]
REASONS = [
    ("Low back pain with right-sided sciatica for 6 weeks.", ["M54.16"]),
    ("Right knee pain after ACL reconstruction, 2 weeks post-op.", ["S83.511A", "Z48.89"]),
    ("Left shoulder pain and weakness reaching overhead.", ["M75.102"]),
    ("Neck pain with headaches after a car accident.", ["S13.4XXA", "M54.2"]),
    ("Running-related heel pain, worse in the morning.", ["M72.2"]),
]
REFERENCE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # as portal.referrals.models.new_reference


# --- results ---------------------------------------------------------------------------------


@dataclass
class Result:
    """One wrk run."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    socket_errors: int  # connect, read, write and timeout errors
    statuses: dict[str, int]  # answers by status code
    reused: int  # times a thread started its list of request bodies over ("bodies" mode)
    taken: int  # the most request bodies one wrk thread took ("bodies" mode)
    split: str = ""  # wrk's connections per gunicorn worker once all were accepted, e.g. "16/16"
    discarded: list[Result] = field(default_factory=list)  # starts stopped for an uneven split
    next_skip: int = 0  # request bodies used up so far, this run included ("bodies" mode)
    size: int = 0  # bytes of one answer's body

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Measured:
    """A page's figures on one served database, or why it has none."""

    label: str
    result: Result | None = None
    problem: str = ""


@dataclass
class Phase:
    """One served database: the hello-world baseline beside it, its pages, the mixed run, the audit check."""

    database: str
    referrals: int
    hello: Measured | None = None
    pages: list[Measured] = field(default_factory=list)
    mixed: Result | None = None
    mixed_stored: int = 0
    audit: str = "not checked"
    load_seconds: float | None = None
    notes: list[str] = field(default_factory=list)


# --- servers ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _gunicorn(app: str, port: int, env: dict[str, str], log: Path, ready_path: str) -> Iterator[str]:
    """gunicorn with the portal's settings (gunicorn.conf.py) on 127.0.0.1:port until the block ends."""
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", app],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + ready_path, timeout=5).status_code == 200:
                    break
            except requests.RequestException:  # not listening yet, or still loading the app
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn ({app}) did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()  # graceful: the workers finish their requests (gunicorn's graceful_timeout, 30 s)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # the session started above: the arbiter and its workers
            server.wait()


def _log_problems(log: Path) -> list[str]:
    """What went wrong in the server's log: each traceback's last line and each lock error, counted."""
    found: dict[str, int] = {}
    lines = log.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j] and not lines[j].startswith(" ")), i)
            key = lines[end].strip()[:200]
        elif "database is locked" in line and not line.startswith(" "):
            key = line.strip()[:200]
        else:
            continue
        found[key] = found.get(key, 0) + 1
    return [f"{n}x {text}" for text, n in found.items()]


# --- wrk -------------------------------------------------------------------------------------


def _connections(port: int, state: str = "established") -> list[int]:
    """The server's connections on ``port`` in ``state`` (an `ss` state filter), per worker process, most first."""
    try:
        listed = subprocess.run(
            ["ss", "-tnpH", "state", state, f"( sport = :{port} )"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    per_pid: dict[str, int] = {}
    for pid in re.findall(r"pid=(\d+)", listed):
        per_pid[pid] = per_pid.get(pid, 0) + 1
    return sorted(per_pid.values(), reverse=True)


def _wait_idle(port: int, timeout: float = 120) -> None:
    """Until the server holds no connection of an earlier run: a request whose client has gone keeps
    its socket (CLOSE-WAIT) until the worker has finished it, so this waits out the backlog too."""
    deadline = time.monotonic() + timeout
    while _connections(port, "connected") and time.monotonic() < deadline:
        time.sleep(0.1)


def _balanced(split: list[int], connections: int) -> bool:
    """Every worker holds its share of the connections, give or take connections/16 (16/16, 15/17, 14/18)."""
    share, slack = connections / WORKERS, max(1.0, connections / 16)
    return len(split) == WORKERS and sum(split) == connections and all(abs(n - share) <= slack for n in split)


def _parse(stdout: str, stderr: str, returncode: int) -> Result:
    line = next((x for x in stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({returncode}): {stderr.strip() or stdout[-500:]}")
    data = json.loads(line.removeprefix("WRK_RESULT "))
    errors, latency = data["errors"], data["latency_us"]
    return Result(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=latency["p50"] / 1000,
        p99_ms=latency["p99"] / 1000,
        non_2xx_3xx=errors["status"],
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        statuses=data["statuses"],
        reused=data["reused"],
        taken=data["taken"],
    )


def _wrk(
    url: str,
    seconds: int,
    connections: int,
    headers: dict[str, str] | None = None,
    mode: str = "plain",
    file: Path | None = None,
    *,
    skip: int = 0,
    balance: bool = True,
) -> Result:
    """One wrk run with bench/pages.lua (modes: see there).

    A keep-alive connection stays with the gunicorn worker that accepted it, and which worker
    accepts how many of wrk's connections is luck: 32/0 as often as 16/16, and a run's latencies
    depend on it. With ``balance``, a start whose connections are not spread evenly (see _balanced)
    is stopped (SIGINT: wrk still reports it) and the run started again, up to BALANCE_ATTEMPTS times.
    """
    port = urlsplit(url).port
    discarded: list[Result] = []
    for attempt in range(1, BALANCE_ATTEMPTS + 1):
        command = [
            "wrk",
            f"-t{WRK_THREADS}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "60s",
            "--latency",
            "-s",
            str(LUA),
        ]
        for name, value in (headers or {}).items():
            command += ["-H", f"{name}: {value}"]
        start = skip if mode == "bodies" else attempt  # bodies: lines used up; mixed: a fresh set of names
        command += [url, "--", mode, str(WRK_THREADS)] + ([str(file), str(start)] if file else [])
        _wait_idle(port)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline, split = time.monotonic() + 5, []
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            split = _connections(port)
            if sum(split) >= connections:
                break
        if not balance or _balanced(split, connections) or attempt == BALANCE_ATTEMPTS:
            break
        process.send_signal(signal.SIGINT)
        stopped = _parse(*process.communicate(timeout=120), process.returncode)
        discarded.append(stopped)
        skip += WRK_THREADS * stopped.taken  # the lines (assertions) the stopped start has used up
    try:
        stdout, stderr = process.communicate(timeout=seconds + 180)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    result = _parse(stdout, stderr, process.returncode)
    result.split = "/".join(map(str, split)) or "n/a"
    result.discarded = discarded
    result.next_skip = skip + WRK_THREADS * result.taken
    return result


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _lua_request(weight: int, method: str, path: str, headers: dict[str, str], body: str | None = None) -> str:
    """One entry of a mixed run's list; a body gets a fresh name per request (vary)."""
    pairs = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
    extra = f", body = {_lua_string(body)}, vary = true" if body is not None else ""
    return (
        f"  {{weight = {weight}, method = {_lua_string(method)}, path = {_lua_string(path)}, "
        f"headers = {{{pairs}}}{extra}}},"
    )


def _unexpected(result: Result, expected: set[str]) -> str:
    """Answers with another status than expected, e.g. "12 answered 302" (a lost session)."""
    return ", ".join(f"{n:,} answered {code}" for code, n in sorted(result.statuses.items()) if code not in expected)


# --- the portal's database -------------------------------------------------------------------


@dataclass(frozen=True)
class Demo:
    """What the measured requests name: a referral of the partner's organization, its patient,
    the partner (the form's clinician) and the FHIR client registered for the organization."""

    referral: str
    patient: str
    partner: str
    client_id: str


def _prepare() -> Demo:
    """The demo data and a FHIR client for the demo partner's organization (inside an app context)."""
    from sqlalchemy import select

    from portal.accounts.models import User
    from portal.demo import seed_demo_data
    from portal.extensions import db
    from portal.referrals.models import Referral
    from tests.api.helpers import make_client

    seed_demo_data()
    partner = db.session.scalar(select(User).where(User.email == PARTNER))
    admin = db.session.scalar(select(User).where(User.email == ADMIN))
    client = make_client(partner.organization, admin=admin, name="Bench EHR")
    # A referral with a whole timeline: a discharged one if the organization has one.
    referral = db.session.scalars(
        select(Referral)
        .where(Referral.organization_id == partner.organization_id)
        .order_by((Referral.status == "discharged").desc(), Referral.id)
    ).first()
    db.session.commit()
    return Demo(str(referral.public_id), str(referral.patient.public_id), str(partner.public_id), client.client_id)


def _reference(n: int) -> str:
    """A unique reference in the portal's alphabet for the n-th loaded referral, spread like random ones."""
    value, out = (n * 0x9E3779B1) % 32**8, []
    for _ in range(8):
        value, digit = divmod(value, 32)
        out.append(REFERENCE_ALPHABET[digit])
    return "RB-" + "".join(out)


class _Rows:
    """Rows for Core bulk inserts: a patient (real ciphertext and blind indexes), its referral and the
    referral's "submitted" timeline row, as the portal would have stored them."""

    def __init__(self, rng: random.Random, clinicians: dict[int, list[int]]):
        from portal.core.phi.fields import blind_indexes
        from portal.patients.demo import FAMILY, GIVEN, PAYERS
        from portal.patients.models import Patient, Sex
        from portal.referrals.models import Referral

        self.rng, self.clinicians, self.organizations = rng, clinicians, sorted(clinicians)
        self.given, self.family, self.payers = GIVEN, FAMILY, PAYERS
        self.patient, self.referral, self.sexes = Patient, Referral, (Sex.FEMALE, Sex.MALE)
        indexes = {ix.name: ix for ix in blind_indexes(Patient)}
        self.name_dob, self.phone_index = indexes["name_dob_bidx"], indexes["phone_bidx"]
        self.name_dob_hmac, self.phone_hmac = self.name_dob.indexer(Patient), self.phone_index.indexer(Patient)
        self.now = datetime.now(UTC)

    def make(self, status: str, patient_id: int, referral_id: int) -> tuple[dict, dict, dict]:
        rng, now, Patient, Referral = self.rng, self.now, self.patient, self.referral
        org = rng.choice(self.organizations)
        clinician = rng.choice(self.clinicians[org])
        if status in OPEN:
            submitted = now - timedelta(days=rng.uniform(0.1, 30 if status == "submitted" else 60))
        else:
            submitted = now - timedelta(days=rng.uniform(30, 3 * 365))
        changed = min(
            now,
            submitted
            + timedelta(
                days=rng.uniform(0, 2)
                if status == "submitted"
                else rng.uniform(2, 90 if status == "discharged" else 10)
            ),
        )
        first_visit = None
        if status in ("scheduled", "in_care", "no_show", "discharged"):
            first_visit = (
                now + timedelta(days=rng.uniform(1, 10))
                if status == "scheduled"
                else submitted + timedelta(days=rng.uniform(3, 10))
            )
        patient_public, referral_public = uuid.uuid4(), uuid.uuid4()
        given, family = rng.choice(self.given), rng.choice(self.family)
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 70))
        phone = f"(608) 555-{rng.randrange(10_000):04d}"
        reason, codes = rng.choice(REASONS)
        payer = rng.choice(self.payers)
        patient = {
            "id": patient_id,
            "public_id": patient_public,
            "us_state_ct": Patient.us_state.encrypt(Patient, patient_public, "WI"),
            "sex_ct": Patient.sex.encrypt(Patient, patient_public, rng.choice(self.sexes)),
            "insurance_payer_ct": None
            if payer is None
            else Patient.insurance_payer.encrypt(Patient, patient_public, payer),
            "created_at": submitted,
            "updated_at": submitted,
            "given_name_ct": Patient.given_name.encrypt(Patient, patient_public, given),
            "family_name_ct": Patient.family_name.encrypt(Patient, patient_public, family),
            "birth_date_ct": Patient.birth_date.encrypt(Patient, patient_public, birth),
            "phone_ct": Patient.phone.encrypt(Patient, patient_public, phone),
            "email_ct": None,
            "address_ct": None,
            "insurance_member_id_ct": None,
            "email_bidx": None,
            "name_dob_bidx": self.name_dob_hmac.compute(self.name_dob.message_for((family, birth))),
            "phone_bidx": self.phone_hmac.compute(self.phone_index.message_for((phone,))),
        }
        referral = {
            "id": referral_id,
            "public_id": referral_public,
            "reference": _reference(referral_id),
            "patient_id": patient_id,
            "organization_id": org,
            "clinician_id": clinician,
            "submitted_by_id": clinician,
            "clinician_npi": None,
            "requested_service": "evaluate_and_treat",
            "urgency": "urgent" if rng.random() < 0.1 else "routine",
            "visit_preference": "either",
            "status": status,
            "status_changed_at": changed,
            "submitted_at": submitted,
            "first_visit_at": first_visit,
            "appointment_mode": "in_clinic" if first_visit else None,
            "reason_ct": Referral.reason.encrypt(Referral, referral_public, reason),
            "icd10_codes_ct": Referral.icd10_codes.encrypt(Referral, referral_public, codes),
            "diagnosis_ct": None,
            "notes_ct": None,
            "needs_duplicate_review": False,
            "version": 1,
            "created_at": submitted,
            "updated_at": changed,
        }
        event = {
            "public_id": uuid.uuid4(),
            "referral_id": referral_id,
            "occurred_at": submitted,
            "actor_id": clinician,
            "kind": "submitted",
            "from_status": None,
            "to_status": "submitted",
            "note_ct": None,
        }
        return patient, referral, event


def _load(total: int, rng: random.Random) -> None:
    """Bulk-load referrals until the database holds ``total`` (inside an app context)."""
    from sqlalchemy import func, insert, select, text
    from tqdm import tqdm

    from portal.accounts.models import User
    from portal.core.permissions import Role
    from portal.extensions import db
    from portal.outcomes import facts
    from portal.partners.models import Organization, OrganizationKind, RelationshipStatus
    from portal.patients.models import Patient
    from portal.referrals.models import Referral, ReferralEvent

    extra = total - db.session.scalar(select(func.count()).select_from(Referral))
    if extra <= 0:
        return
    for i, (name, kind) in enumerate(EXTRA_ORGANIZATIONS):
        org = Organization(name=name, kind=OrganizationKind(kind), city="Madison", us_state="WI")
        db.session.add(org)
        db.session.flush()
        db.session.add(
            User(
                email=f"bench-clinician-{i}@example.org",
                full_name=f"Dr. Bench {i}",
                role=Role.PARTNER,
                organization_id=org.id,
            )
        )
    db.session.flush()
    clinicians: dict[int, list[int]] = {}
    for user in db.session.scalars(
        select(User)
        .join(Organization, Organization.id == User.organization_id)
        .where(Organization.relationship_status == RelationshipStatus.ACTIVE)
        .order_by(User.id)
    ):
        clinicians.setdefault(user.organization_id, []).append(user.id)
    rows = _Rows(rng, clinicians)
    patient_id = (db.session.scalar(select(func.max(Patient.id))) or 0) + 1
    referral_id = (db.session.scalar(select(func.max(Referral.id))) or 0) + 1
    with tqdm(total=extra, unit=" referrals", desc=f"loading {total:,}", file=sys.stderr, mininterval=2) as bar:
        while bar.n < extra:
            made = [
                rows.make(status, patient_id + k, referral_id + k)
                for k, status in enumerate(
                    rng.choices(list(STATUS_MIX), list(STATUS_MIX.values()), k=min(CHUNK, extra - bar.n))
                )
            ]
            for model, chunk in zip((Patient, Referral, ReferralEvent), zip(*made, strict=True), strict=True):
                db.session.execute(insert(model.__table__), list(chunk))
            db.session.commit()
            patient_id, referral_id = patient_id + len(made), referral_id + len(made)
            bar.update(len(made))
    facts.rebuild(db.session)  # the bulk insert bypassed the ORM hook that keeps the report facts current
    if db.engine.dialect.name == "postgresql":  # explicit ids: move the sequences past them
        for table in ("patients", "referrals"):
            db.session.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )
    db.session.commit()


def _analyze() -> None:
    """Planner statistics, and on PostgreSQL the visibility map, as autovacuum would leave them."""
    from sqlalchemy import text

    from portal.extensions import db

    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def _count_referrals() -> int:
    from sqlalchemy import func, select

    from portal.extensions import db
    from portal.referrals.models import Referral

    return db.session.scalar(select(func.count()).select_from(Referral))


def _count_referrals_in(config: dict) -> int:
    from portal import create_app
    from portal.extensions import db

    app = create_app(config)
    with app.app_context():
        try:
            return _count_referrals()
        finally:
            db.session.remove()
            db.engine.dispose()


# --- sessions, tokens, targets ---------------------------------------------------------------


def _cookie_header(session: requests.Session) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{c.name}={c.value}" for c in session.cookies)}


def _sign_in_staff(portal) -> requests.Session:
    """Both steps; a code is good once per user and 30-second step, so a refused one means: wait a step."""
    from portal.mfa import totp
    from portal.mfa.demo import DEMO_TOTP_SECRET

    try:
        return portal.signed_in(STAFF, totp.code_at(DEMO_TOTP_SECRET, totp.time_step()))
    except AssertionError:
        time.sleep(totp.PERIOD - time.time() % totp.PERIOD + 0.5)
        return portal.signed_in(STAFF, totp.code_at(DEMO_TOTP_SECRET, totp.time_step()))


@dataclass
class Sessions:
    partner: dict[str, str]  # Cookie header
    staff: dict[str, str]
    csrf: str  # the partner session's CSRF token, for submissions


def _sessions(portal) -> Sessions:
    partner = portal.signed_in(PARTNER)
    csrf = portal.csrf(partner, "/partner/referrals/new")  # kept in the session cookie: take the cookie after
    staff = _sign_in_staff(portal)
    for session in (partner, staff):
        session.close()  # its idle keep-alive connection would count as one of wrk's
    return Sessions(_cookie_header(partner), _cookie_header(staff), csrf)


class Assertions:
    """Signed client assertions (RS384, RSA-2048, a fresh jti each) for the demo organization's FHIR client."""

    def __init__(self, base: str, client_id: str):
        self.base = base
        self.client = SimpleNamespace(client_id=client_id)

    def body(self) -> str:
        from tests.api.helpers import ASSERTION_TYPE, assertion, rsa_key

        signed = assertion(self.client, rsa_key(), aud=self.base + TOKEN_PATH)
        return urlencode(
            {
                "grant_type": "client_credentials",
                "scope": "system/Task.read",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": signed,
            }
        )

    def file(self, path: Path, count: int) -> Path:
        path.write_text("".join(self.body() + "\n" for _ in range(count)))
        return path

    def bearer(self) -> dict[str, str]:
        """A new access token (they live five minutes): one per run."""
        response = requests.post(self.base + TOKEN_PATH, data=self.body(), headers=FORM, timeout=30)
        response.raise_for_status()
        return {"Authorization": "Bearer " + response.json()["access_token"]}


def _reads(demo: Demo, sessions: Sessions, assertions: Assertions) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(label, path, headers) of the five pages read, in order; the FHIR search's token made just in time."""
    yield "partner home `/partner/`", "/partner/", sessions.partner
    yield "partner referral page", f"/partner/referrals/{demo.referral}", sessions.partner
    yield "staff intake queue `/staff/referrals/`", "/staff/referrals/", sessions.staff
    yield "staff patient page", f"/staff/patients/{demo.patient}", sessions.staff
    yield "FHIR Task search `GET /fhir/Task`", "/fhir/Task", assertions.bearer()


def _check(method: str, url: str, headers: dict[str, str], body: str | None = None) -> tuple[int, int]:
    """(status, body bytes) of one request, redirects not followed."""
    response = requests.request(method, url, headers=headers, data=body, allow_redirects=False, timeout=120)
    return response.status_code, len(response.content)


# --- runs ------------------------------------------------------------------------------------


def _progress(label: str, result: Result) -> None:
    print(
        f"  {label}: {result.rate:,.0f} req/s, p50 {result.p50_ms:,.1f} ms, p99 {result.p99_ms:,.1f} ms, "
        f"non-2xx/3xx {result.non_2xx_3xx}, socket errors {result.socket_errors}, connections per worker "
        f"{result.split} ({len(result.discarded)} uneven start(s) stopped)",
        file=sys.stderr,
    )


def _measure(
    label: str,
    url: str,
    args,
    headers: dict[str, str] | None = None,
    *,
    bodies: Path | None = None,
    body: str | None = None,
) -> Measured:
    """Check that one request answers 200, warm up, then the measured run (POSTing ``bodies``, if given)."""
    status, size = _check("POST" if body else "GET", url, {**(headers or {}), **(FORM if body else {})}, body)
    if status != 200:
        return Measured(label, problem=f"not measured: answered {status}")
    mode = "bodies" if bodies else "plain"
    warm = _wrk(url, args.warmup, args.connections, headers, mode, bodies, balance=False)
    result = _wrk(url, args.seconds, args.connections, headers, mode, bodies, skip=warm.next_skip)
    result.size = size
    problem = _unexpected(result, {"200"})
    if result.reused:
        problem = "; ".join(filter(None, [problem, "ran out of pre-signed assertions: reused ones were refused"]))
    _progress(label, result)
    return Measured(label, result, problem)


def _measure_hello(tmp: Path, args) -> Measured:
    port = _free_port()
    with _gunicorn("bench.hello_wsgi:app", port, dict(os.environ), tmp / "hello-gunicorn.log", "/") as base:
        return _measure("hello world (baseline)", base + "/", args)


def _measure_pages(base: str, demo: Demo, sessions: Sessions, tmp: Path, args) -> list[Measured]:
    assertions = Assertions(base, demo.client_id)
    measured = [
        _measure(label, base + path, args, headers) for label, path, headers in _reads(demo, sessions, assertions)
    ]
    # Enough for the warm-up, the run, and starts stopped for an uneven split (each under a second).
    count = (args.warmup + args.seconds + SPARE_SECONDS) * ASSERTIONS_PER_SECOND
    measured.append(
        _measure(
            "FHIR token `POST /fhir/auth/token`",
            base + TOKEN_PATH,
            args,
            bodies=assertions.file(tmp / "assertions.txt", count),
            body=assertions.body(),
        )
    )
    return measured


def _measure_mixed(base: str, demo: Demo, sessions: Sessions, tmp: Path, args) -> Result:
    from tests.referrals.conftest import valid_form

    lines = ["return {"]
    lines += [
        _lua_request(READ_WEIGHT, "GET", path, headers)
        for _, path, headers in _reads(demo, sessions, Assertions(base, demo.client_id))
    ]
    form = valid_form(family_name=NAME_PLACEHOLDER, clinician=demo.partner, csrf_token=sessions.csrf)
    lines += [
        _lua_request(
            SUBMISSION_WEIGHT, "POST", "/partner/referrals/new", {**sessions.partner, **FORM}, urlencode(form)
        ),
        "}",
    ]
    spec = tmp / "mixed.lua"
    spec.write_text("\n".join(lines) + "\n")
    result = _wrk(base + "/", args.seconds, args.connections, mode="mixed", file=spec)
    _progress("mixed, 10% submissions", result)
    return result


def _audit(portal) -> str:
    sealed = portal.flask("audit", "seal", timeout=1800)
    verified = portal.flask("audit", "verify", timeout=1800)
    ok = sealed.returncode == 0 and verified.returncode == 0 and "The audit chain is intact." in verified.stdout
    detail = " ".join((sealed.stdout + " " + verified.stdout).split())
    if not ok:
        detail += (
            f" (seal exited {sealed.returncode}, verify {verified.returncode}) "
            + " ".join((sealed.stderr + " " + verified.stderr).split())[-500:]
        )
    return ("verified. " if ok else "NOT VERIFIED. ") + detail


def _serve(phase: Phase, url: str | None, tmp: Path, name: str, args, *, size: int | None = None) -> None:
    """A fresh database with the demo data (bulk-loaded up to ``size`` referrals, if given), served by
    gunicorn: the pages, the mixed run when there is no ``size``, then the audit check."""
    from portal.extensions import db
    from tests.conftest import migrated_app, test_config
    from tests.live import LivePortal

    port = _free_port()
    overrides = {"WTF_CSRF_ENABLED": True, "PORTAL_BASE_URL": f"http://127.0.0.1:{port}"}
    db_url = fresh_database(url, tmp / f"{name}.db")
    instance = tmp / f"{name}-instance"
    app = migrated_app(db_url, instance, **overrides)
    with app.app_context():
        demo = _prepare()
        if size is not None:
            started = time.perf_counter()
            _load(size, random.Random(size))
            phase.load_seconds = time.perf_counter() - started
        _analyze()
        phase.referrals = _count_referrals()
        db.session.remove()
        db.engine.dispose()
    config = test_config(db_url, instance, **overrides)  # what tests/live.py serves, CSRF on
    log = tmp / f"{name}-gunicorn.log"
    portal = LivePortal(f"http://127.0.0.1:{port}", config, log)
    print(f"\n{phase.database}, {phase.referrals:,} referrals:", file=sys.stderr)
    try:
        with _gunicorn("tests.live_wsgi:app", port, portal.env, log, "/healthz") as base:
            sessions = _sessions(portal)
            phase.pages = _measure_pages(base, demo, sessions, tmp, args)
            if size is None:
                before = _count_referrals_in(config)
                phase.mixed = _measure_mixed(base, demo, sessions, tmp, args)
                phase.mixed_stored = _count_referrals_in(config) - before
    finally:
        phase.notes += _log_problems(log)
    phase.audit = _audit(portal)
    print(f"  audit chain {phase.audit}", file=sys.stderr)


def _run(phase: Phase, *serve_args, **serve_kwargs) -> Phase:
    """_serve, keeping the other figures if this database fails (the portal is being worked on)."""
    try:
        _serve(phase, *serve_args, **serve_kwargs)
    except Exception as exc:  # noqa: BLE001 - reported in the output, the run goes on
        traceback.print_exc()
        phase.notes.append(f"failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return phase


# --- report ----------------------------------------------------------------------------------


def _machine(pg: str | None) -> str:
    import gunicorn

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split(" [")[0]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "portal", "templates", "migrations"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    return "\n".join(
        [
            f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average at the start: "
            + " / ".join(f"{x:.2f}" for x in os.getloadavg()),
            f"- machine: {platform.platform()}, {cpu}, {os.cpu_count()} CPU(s)",
            f"- {platform.python_implementation()} {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"{pg or 'no PostgreSQL'}, {wrk}, gunicorn {gunicorn.__version__} "
            f"({os.environ.get('WEB_CONCURRENCY', '2')} workers x 2 gthread threads, gunicorn.conf.py)",
            f"- code: {commit or 'unknown'}"
            + (f", with {len(dirty)} uncommitted change(s) under portal/, templates/, migrations/" if dirty else ""),
        ]
    )


def _pg_version(url: str) -> str | None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(make_url(url).set(database="postgres"))
    try:
        with engine.connect() as conn:
            return "PostgreSQL " + conn.execute(text("SHOW server_version")).scalar().split()[0]
    except Exception:  # noqa: BLE001 - not reachable: the caller says so and goes on without it
        return None
    finally:
        engine.dispose()


def _ratio(a: float, b: float) -> str:
    return f"{a / b:,.2f}x" if b else "n/a"


def _pages_table(phases: list[Phase]) -> str:
    rows = [
        "| database | page | req/s | p50 (ms) | p99 (ms) | non-2xx/3xx | socket errors | response (bytes) "
        "| req/s vs hello | p99 vs hello | connections per worker |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for phase in phases:
        hello = phase.hello.result if phase.hello else None
        for page in ([phase.hello] if phase.hello else []) + phase.pages:
            r = page.result
            if r is None:
                rows.append(f"| {phase.database} | {page.label} | {page.problem} |" + " |" * 8)
                continue
            rows.append(
                f"| {phase.database} | {page.label} | {r.rate:,.0f} | {r.p50_ms:,.1f} | {r.p99_ms:,.1f} | "
                f"{r.non_2xx_3xx:,} | {r.socket_errors:,} | {r.size:,} | "
                f"{_ratio(r.rate, hello.rate) if hello else ''} | "
                f"{_ratio(r.p99_ms, hello.p99_ms) if hello else ''} | {r.split} |"
            )
    return "\n".join(rows)


def _mixed_table(phases: list[Phase], connections: int) -> str:
    rows = [
        "| database | requests | req/s | p50 (ms) | p99 (ms) | non-2xx/3xx | socket errors | reads answered 200 "
        "| submissions answered 302 | other answers | connections per worker "
        "| submissions answered 302, stopped starts included | referrals stored |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for phase in phases:
        r = phase.mixed
        if r is None:
            continue
        starts = [r, *r.discarded]
        answered, stored = sum(x.statuses.get("302", 0) for x in starts), phase.mixed_stored
        # wrk stops with up to one request in flight per connection: stored, but never answered to wrk.
        check = "" if 0 <= stored - answered <= connections * len(starts) else " (MISMATCH)"
        rows.append(
            f"| {phase.database} | {r.requests:,} | {r.rate:,.0f} | {r.p50_ms:,.1f} | {r.p99_ms:,.1f} | "
            f"{r.non_2xx_3xx:,} | {r.socket_errors:,} | {r.statuses.get('200', 0):,} | "
            f"{r.statuses.get('302', 0):,} | {_unexpected(r, {'200', '302'}) or 'none'} | {r.split} | "
            f"{answered:,} | {stored:,}{check} |"
        )
    return "\n".join(rows)


def _scale_table(database: str, series: list[Phase]) -> str:
    sizes = [p.referrals for p in series]
    small, large = f"{sizes[0]:,}", f"{sizes[-1]:,}"
    rows = [
        "| database | page | "
        + " | ".join(f"p50 at {s:,} (ms)" for s in sizes)
        + f" | p50 {large} / {small} | ≤ {TARGET_RATIO}x | "
        + " | ".join(f"req/s at {s:,}" for s in sizes)
        + f" | req/s {small} / {large} | p99 at {large} (ms) | response bytes | connections per worker "
        "| non-2xx/3xx + socket errors |",
        "|---|---|" + "---:|" * len(sizes) + "---:|:---:|" + "---:|" * len(sizes) + "---:|---:|---:|---:|---:|",
    ]
    labels = list(dict.fromkeys(m.label for phase in series for m in phase.pages))
    if not labels:
        rows.append(f"| {database} | not measured (see the notes) |" + " |" * (2 * len(sizes) + 7))
    for label in labels:
        pages = [
            next((m for m in p.pages if m.label == label), Measured(label, problem="not measured")) for p in series
        ]
        results = [p.result for p in pages]
        if None in results:
            problems = "; ".join(f"{s:,}: {p.problem}" for s, p in zip(sizes, pages, strict=True) if p.result is None)
            rows.append(f"| {database} | {label} | {problems} |" + " |" * (2 * len(sizes) + 6))
            continue
        ratio = results[-1].p50_ms / results[0].p50_ms if results[0].p50_ms and results[-1].requests else None
        verdict = "n/a" if ratio is None else "yes" if ratio <= TARGET_RATIO else "no"
        rows.append(
            f"| {database} | {label} | "
            + " | ".join(f"{r.p50_ms:,.1f}" for r in results)
            + f" | **{'n/a' if ratio is None else f'{ratio:,.2f}x'}** | {verdict} | "
            + " | ".join(f"{r.rate:,.0f}" for r in results)
            + f" | {_ratio(results[0].rate, results[-1].rate)} | {results[-1].p99_ms:,.1f} | "
            + " → ".join(f"{r.size:,}" for r in results)
            + " | "
            + " → ".join(r.split for r in results)
            + f" | {sum(r.non_2xx_3xx + r.socket_errors for r in results):,} |"
        )
    return "\n".join(rows)


def _report(machine: str, phases: list[Phase], scale: list[tuple[str, list[Phase]]], notes: list[str], args) -> None:
    print(f"## Pages under load\n\n{machine}\n")
    print(
        f"Each page: {args.connections} keep-alive connections for {args.seconds} s after a {args.warmup} s "
        f"warm-up (wrk, {WRK_THREADS} threads), on the demo data ({phases[0].referrals:,} referrals). "
        "The ratios compare with hello world served the same way, measured just before the portal on each "
        "database.\n"
    )
    print(_pages_table(phases))
    print(
        f"\nMixed: {args.connections} connections for {args.seconds} s, about {SUBMISSION_WEIGHT}% referral "
        "submissions (POST /partner/referrals/new), the rest the five reads above in equal parts. The last two "
        "columns count from before the first start to the end, starts stopped for an uneven split included: "
        "referrals stored may exceed the submissions answered by those in flight when wrk stopped.\n"
    )
    print(_mixed_table(phases, args.connections))
    print()
    for phase in phases:
        print(f"- {phase.database}: audit chain {phase.audit}")
    for database, series in scale:
        print(f"\n### {database}: by database size\n")
        print(_scale_table(database, series))
        print()
        for phase in series:
            print(
                f"- {phase.referrals:,} referrals: loaded in {phase.load_seconds or 0:,.1f} s (not part of the "
                f"figures); audit chain {phase.audit}"
            )
    every = phases + [phase for _, series in scale for phase in series]
    lines = notes + [
        f"{p.database}, {p.referrals:,} referrals, {m.label}: {m.problem}"
        for p in every
        for m in p.pages
        if m.result is not None and m.problem
    ]
    lines += [f"{p.database}, {p.referrals:,} referrals: {note}" for p in every for note in p.notes]
    if lines:
        print("\nNotes:\n")
        print("\n".join(f"- {line}" for line in lines))


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="each measured run, in seconds (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted run before each, in seconds (default 1)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument(
        "--pg",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG),
        help='PostgreSQL URL (the database is dropped and recreated), or "none"',
    )
    parser.add_argument("--scale", action="store_true", help="then the six pages at each of the --sizes")
    parser.add_argument(
        "--sizes",
        help="referrals in the database for --scale, comma-separated, on both "
        "databases (default 1000,200000 on SQLite, 1000,1000000 on PostgreSQL)",
    )
    args = parser.parse_args()
    if args.warmup < 1 or args.seconds < 1 or args.connections < WRK_THREADS:
        parser.error(f"--seconds and --warmup are at least 1, --connections at least {WRK_THREADS}")
    sizes = sorted(int(s.replace("_", "")) for s in args.sizes.split(",")) if args.sizes else None

    pg_version = _pg_version(args.pg) if args.pg != "none" else None
    targets: list[tuple[str, str | None, list[int]]] = [("SQLite (file, WAL)", None, sizes or list(SQLITE_SIZES))]
    notes = []
    if args.pg == "none":
        notes.append("PostgreSQL: not run (--pg none).")
    elif pg_version is None:
        notes.append(f"PostgreSQL: not run, nothing answered at {args.pg}.")
    else:
        targets.append((pg_version, args.pg, sizes or list(PG_SIZES)))
    for note in notes:
        print(note, file=sys.stderr)
    machine = _machine(pg_version)

    phases: list[Phase] = []
    scale: list[tuple[str, list[Phase]]] = []
    with tempfile.TemporaryDirectory(prefix="bench_pages_") as tmp_name:
        tmp = Path(tmp_name)
        for database, url, _ in targets:
            phase = Phase(database, 0)
            print(f"\n{database}: hello world", file=sys.stderr)
            phase.hello = _measure_hello(tmp, args)
            phases.append(_run(phase, url, tmp, "pages", args))
        if args.scale:
            for database, url, counts in targets:
                scale.append(
                    (database, [_run(Phase(database, n), url, tmp, f"scale{n}", args, size=n) for n in counts])
                )
    _report(machine, phases, scale, notes, args)


if __name__ == "__main__":
    main()
