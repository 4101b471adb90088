"""Many people at once, on a real server (gunicorn, two workers of two threads, as `make run`),
on SQLite and PostgreSQL alike: readers and writers get no error, every PHI read is audited
exactly once, and the audit chain still verifies afterwards. Not timed: speed is bench/'s job."""

import itertools
import random
import re
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from portal import create_app
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.mfa import totp
from portal.mfa.demo import DEMO_TOTP_SECRET
from portal.referrals.models import ReferralEvent
from tests import live

SECONDS = 3.0
# Each person also makes at least this many requests, however slow the machine, so the run is
# never too small to mean anything.
AT_LEAST = 6
REFERRAL_LINK = re.compile(r'href="(/partner/referrals/[0-9a-f-]{36})"')
STAFF_LINK = re.compile(r'href="(/staff/referrals/[0-9a-f-]{36})"')


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    with live.serve(tmp_path_factory.mktemp("concurrency"), "concurrency") as served:
        yield served


def _demo_code() -> str:
    return totp.code_at(DEMO_TOTP_SECRET, totp.time_step())


def _count(portal, query):
    app = create_app(portal.config)
    with app.app_context():
        try:
            return db.session.scalar(query)
        finally:
            db.session.remove()
            db.engine.dispose()


def test_readers_and_writers_at_once_get_no_error_and_every_read_is_audited_once(portal):
    partners = [
        portal.signed_in(email)
        for email in ["partner@lakeside-ortho.example"] * 8
        + ["partner@maple-primary.example"] * 4
        + ["padmin@lakeside-ortho.example"] * 2
    ]
    staff = [
        portal.signed_in("staff@riverbend-pt.example", _demo_code()),
        portal.signed_in("therapist@riverbend-pt.example", _demo_code()),
    ]
    links = {id(s): REFERRAL_LINK.findall(s.get(portal.base + "/partner/?status=").text) for s in partners}
    # Notes go to open referrals: the links of the list itself, not of "What's new" above it, which may name a
    # referral that closed since (a note there is a 422, rightly).
    open_links = {
        id(s): REFERRAL_LINK.findall(s.get(portal.base + "/partner/?status=open").text.split('id="list-h"', 1)[-1])
        for s in partners
    }
    queue = STAFF_LINK.findall(staff[0].get(portal.base + "/staff/referrals/?status=in_care").text)
    assert all(links.values()) and all(open_links.values()) and queue
    reads_before = _count(
        portal,
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "phi.read", AuditEvent.detail["view"].as_string() == "partner"),
    )
    notes_before = _count(portal, select(func.count()).select_from(ReferralEvent).where(ReferralEvent.kind == "note"))

    statuses, detail_reads, notes_sent, failures = Counter(), Counter(), Counter(), []
    stop = time.monotonic() + SECONDS

    def partner(session, seed):
        rng, own, open_ = random.Random(seed), links[id(session)], open_links[id(session)]
        token = portal.csrf(session, "/partner/")
        for done in itertools.count():
            if done >= AT_LEAST and time.monotonic() >= stop:
                break
            roll, referral = rng.random(), rng.choice(own)
            if roll < 0.1:  # one request in ten writes
                r = session.post(
                    portal.base + rng.choice(open_) + "/notes",
                    data={"csrf_token": token, "note": "Called the patient."},
                    allow_redirects=False,
                )
                notes_sent[r.status_code] += 1
            elif roll < 0.55:
                r = session.get(portal.base + referral)
                detail_reads[r.status_code] += 1
            else:
                r = session.get(portal.base + "/partner/")
            statuses[r.status_code] += 1

    def practice(session, seed):
        rng = random.Random(seed)
        for done in itertools.count():
            if done >= AT_LEAST and time.monotonic() >= stop:
                break
            path = rng.choice(["/staff/referrals/", "/staff/approvals", rng.choice(queue)])
            statuses[session.get(portal.base + path).status_code] += 1

    def guarded(target, *args):
        try:
            target(*args)
        except Exception as exc:  # noqa: BLE001 - a thread's exception would be lost
            failures.append(repr(exc))

    threads = [threading.Thread(target=guarded, args=(partner, s, i)) for i, s in enumerate(partners)]
    threads += [threading.Thread(target=guarded, args=(practice, s, 100 + i)) for i, s in enumerate(staff)]
    [t.start() for t in threads]
    [t.join(120) for t in threads]

    assert failures == []
    assert sum(statuses.values()) > 50, statuses
    assert {code for code in statuses if code >= 400} == set(), statuses  # no 5xx, no "portal is busy"
    assert set(notes_sent) == {302}
    # Every referral page shown left exactly one PHI read; every note landed once.
    assert (
        _count(
            portal,
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "phi.read", AuditEvent.detail["view"].as_string() == "partner"),
        )
        == reads_before + detail_reads[200]
    )
    assert (
        _count(portal, select(func.count()).select_from(ReferralEvent).where(ReferralEvent.kind == "note"))
        == notes_before + notes_sent[302]
    )


def test_the_audit_chain_verifies_after_the_load_with_a_sealer_running_beside_it(portal):
    sealer = portal.spawn_flask("audit", "seal", "--every", "0.2")
    try:
        assert "audit sealer: sealing every" in sealer.stdout.readline()  # started, signals handled
        session = portal.signed_in("partner@lakeside-ortho.example")
        stop = time.monotonic() + 1.5
        while time.monotonic() < stop:
            assert session.get(portal.base + "/partner/").status_code == 200
    finally:
        sealer.terminate()
        output = sealer.communicate(timeout=30)[0]
    assert sealer.returncode == 0 and "Traceback" not in output and "Sealed" in output
    assert portal.flask("audit", "seal").returncode == 0
    verified = portal.flask("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "The audit chain is intact." in verified.stdout
