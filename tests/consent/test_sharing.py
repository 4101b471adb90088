"""Consent-gated sharing end to end: record, approve (never your own), see, revoke, account."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.consent.models import Consent, ConsentStatus
from portal.notifications.models import OutboxMessage
from portal.progress.models import ProgressUpdate, UpdateState
from tests import factories
from tests.clock import practice_today
from tests.conftest import sign_in
from tests.consent.helpers import add_consent, add_update


@pytest.fixture
def episode(db, login_as):
    partner = login_as("partner")
    referral = factories.make_referral(partner.organization, partner)
    return partner, referral


def _staff(app, db):
    client = app.test_client()
    user = factories.make_user("staff")
    sign_in(client, user.email)
    return client, user


def test_staff_records_consent_and_partner_sees_released_update(app, client, db, episode, outbox):
    partner, referral = episode
    author_client, author = _staff(app, db)
    approver_client, approver = _staff(app, db)
    patient_url = f"/staff/patients/{referral.patient.public_id}"
    response = author_client.post(
        f"{patient_url}/consents",
        data={
            "organization": str(partner.organization.public_id),
            "clinician": "",
            "categories": ["progress_notes"],
            "effective_on": practice_today().isoformat(),
            "method": "verbal_witnessed",
            "witness": "Sam Intake",
        },
    )
    assert response.status_code == 302
    response = author_client.post(
        f"{patient_url}/updates",
        data={
            "referral": str(referral.public_id),
            "visit_date": practice_today().isoformat(),
            "category": "progress_notes",
            "body": "Knee flexion now 120 degrees; climbing stairs.",
            "action": "submit",
        },
    )
    assert response.status_code == 302
    item = db.session.scalar(select(ProgressUpdate))
    assert item.state is UpdateState.PENDING
    partner_page = f"/partner/patients/{referral.patient.public_id}"
    assert b"climbing stairs" not in client.get(partner_page).data  # pending: not yet

    own = author_client.post(f"/staff/updates/{item.public_id}/approve", data={"version": item.version})
    assert own.status_code == 422 and b"another staff member must approve" in own.data
    assert (
        approver_client.post(f"/staff/updates/{item.public_id}/approve", data={"version": item.version}).status_code
        == 302
    )
    assert b"climbing stairs" in client.get(partner_page).data
    (notice,) = outbox(partner.email)
    assert notice.template == "update_available" and "stairs" not in str(notice.context)

    consent = db.session.scalar(select(Consent))
    response = author_client.post(
        f"{patient_url}/consents/{consent.public_id}/revoke", data={"reason": "Patient asked"}
    )
    assert response.status_code == 302
    assert b"climbing stairs" not in client.get(partner_page).data  # revoked: hidden at once
    versions = db.session.scalars(select(Consent).order_by(Consent.version)).all()
    assert [(c.version, c.status) for c in versions] == [(1, ConsentStatus.ACTIVE), (2, ConsentStatus.REVOKED)]


def test_expired_consent_hides_updates_without_any_job(client, db, episode):
    partner, referral = episode
    staff = factories.make_user("staff")
    add_consent(referral, start=practice_today() - timedelta(days=60), end=practice_today() - timedelta(days=1))
    add_update(referral, staff, body="Expired consent body")
    assert b"Expired consent body" not in client.get(f"/partner/patients/{referral.patient.public_id}").data


@pytest.mark.parametrize("state", [UpdateState.DRAFT, UpdateState.PENDING, UpdateState.RETURNED])
def test_partner_never_sees_unreleased_updates(client, db, episode, state):
    partner, referral = episode
    add_consent(referral)
    add_update(referral, factories.make_user("staff"), state=state, body="Not for the partner")
    assert b"Not for the partner" not in client.get(f"/partner/patients/{referral.patient.public_id}").data


def test_two_approvers_at_once_exactly_one_wins(app, database_url, tmp_path):
    """Real concurrency: two connections approve the same pending update at the same time."""
    import os

    from portal.core.unit_of_work import writing
    from portal.extensions import db as _db
    from portal.progress import services
    from tests.conftest import fresh_database, migrated_app

    url = fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp_path, "race")
    race_app = migrated_app(url, tmp_path)
    with race_app.app_context():
        org = factories.make_organization()
        referral = factories.make_referral(org)
        add_consent(referral)
        author, a1, a2 = (factories.make_user("staff") for _ in range(3))
        item = add_update(referral, author, state=UpdateState.PENDING)
        ids = (item.id, item.version, a1.id, a2.id)
        _db.session.commit()

    barrier, outcomes = threading.Barrier(2), []

    def approve(approver_id):
        with race_app.app_context(), writing():  # as an approval request runs
            from portal.accounts.models import User

            # Both start at once. On PostgreSQL both read the update, then the conditional UPDATE
            # decides; on SQLite a write transaction takes the writer lock first (BEGIN IMMEDIATE),
            # so the second waits for the first to commit and then finds the update handled.
            barrier.wait()
            update = _db.session.get(ProgressUpdate, ids[0])
            approver = _db.session.get(User, approver_id)
            try:
                services.approve(approver, update, ids[1])
                _db.session.commit()
                outcomes.append("ok")
            except services.ProgressError:
                _db.session.rollback()
                outcomes.append("refused")

    threads = [threading.Thread(target=approve, args=(i,)) for i in ids[2:]]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(o.split(":")[0] for o in outcomes) == ["ok", "refused"]
    with race_app.app_context():
        assert (
            _db.session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.template == "update_available")
            )
            == 1
        )
        _db.engine.dispose()


def test_return_to_author_needs_a_note_and_author_can_resubmit(app, db, episode):
    partner, referral = episode
    author_client, author = _staff(app, db)
    other_client, _ = _staff(app, db)
    item = add_update(referral, author, state=UpdateState.PENDING)
    assert (
        other_client.post(f"/staff/updates/{item.public_id}/return", data={"version": item.version}).status_code == 422
    )
    assert (
        other_client.post(
            f"/staff/updates/{item.public_id}/return", data={"version": item.version, "note": "Add the pain score"}
        ).status_code
        == 302
    )
    db.session.refresh(item)
    assert item.state is UpdateState.RETURNED and item.return_note == "Add the pain score"
    response = author_client.post(
        f"/staff/updates/{item.public_id}/revise",
        data={"visit_date": practice_today().isoformat(), "body": "Pain 3/10, improving."},
    )
    assert response.status_code == 302
    db.session.refresh(item)
    assert item.state is UpdateState.PENDING and item.body == "Pain 3/10, improving."


def test_accounting_of_disclosures_lists_each_view(app, client, db, episode):
    partner, referral = episode
    add_consent(referral)
    add_update(referral, factories.make_user("staff"), body="Shared text")
    client.get(f"/partner/patients/{referral.patient.public_id}")
    staff_client, _ = _staff(app, db)
    page = staff_client.get(f"/staff/patients/{referral.patient.public_id}/disclosures")
    assert page.status_code == 200 and partner.full_name.encode() in page.data
    csv_response = staff_client.get(f"/staff/patients/{referral.patient.public_id}/disclosures?format=csv")
    lines = csv_response.data.decode().strip().splitlines()
    assert len(lines) == 2 and partner.email in lines[1] and "progress_notes" in lines[1]
    assert "Shared text" not in csv_response.data.decode()


def test_consent_form_errors_are_explained(app, db, episode):
    partner, referral = episode
    staff_client, _ = _staff(app, db)
    url = f"/staff/patients/{referral.patient.public_id}/consents"
    base = {
        "organization": str(partner.organization.public_id),
        "clinician": "",
        "categories": ["progress_notes"],
        "effective_on": practice_today().isoformat(),
    }
    for extra, message in [
        ({"method": "signed_form"}, b"Upload the signed consent form"),
        ({"method": "verbal_witnessed"}, b"Name the witness"),
        ({"method": "electronic", "expires_on": "2000-01-01"}, b"on or after the effective date"),
        ({"method": "electronic", "categories": []}, b"Choose at least one"),
    ]:
        response = staff_client.post(url, data={**base, **extra})
        assert response.status_code == 422 and message in response.data, message
    assert db.session.scalar(select(func.count()).select_from(Consent)) == 0


def test_staff_home_counts_what_needs_them(client, login_as, db):
    import re

    me = login_as("staff")
    org = factories.make_organization()
    referral = factories.make_referral(org)
    colleague = factories.make_user("staff")
    add_update(referral, colleague, state=UpdateState.PENDING)  # mine to approve
    add_update(referral, me, state=UpdateState.PENDING)  # my own: not mine to approve
    add_consent(referral, end=practice_today() + timedelta(days=5))
    page = client.get("/staff/").data.decode()
    # Staff Today's counts grid (issue 15): each count links to its queue.
    count = r'<span class="stat-value">1</span> <span class="stat-label">{}</span>'
    assert re.search(count.format("Updates waiting for approval"), page)
    assert re.search(count.format("Consents expiring in 30 days"), page)


def test_overlong_return_note_or_garbled_version_is_refused_and_nothing_changes(app, db, episode):
    partner, referral = episode
    author_client, author = _staff(app, db)
    other_client, _ = _staff(app, db)
    item = add_update(referral, author, state=UpdateState.PENDING)
    url = f"/staff/updates/{item.public_id}"
    too_long = other_client.post(f"{url}/return", data={"version": item.version, "note": "x" * 2001})
    assert too_long.status_code == 422 and b"longer than 2000" in too_long.data
    huge = other_client.post(f"{url}/approve", data={"version": "9" * 40})
    assert huge.status_code == 409
    db.session.refresh(item)
    assert item.state is UpdateState.PENDING and item.return_note is None
