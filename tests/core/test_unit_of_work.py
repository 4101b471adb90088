"""The request's unit of work (portal/core/unit_of_work.py): reads stay reads, what a request
showed is audited whatever it answers, and a failed commit gets the portal's own page."""

import sqlite3

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from portal import create_app
from portal.accounts.models import UserSession
from portal.audit.models import AuditEvent
from portal.core import unit_of_work
from portal.core.permissions import Role
from portal.partners.models import Organization, OrganizationKind
from tests import factories
from tests.conftest import test_config as config_for


def _locked() -> OperationalError:
    return OperationalError("COMMIT", {}, sqlite3.OperationalError("database is locked"))


def _phi_reads(db, referral) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "phi.read", AuditEvent.object_id == str(referral.public_id))
    )


def test_a_phi_read_on_a_page_that_answers_422_is_audited_exactly_once(client, db, login_as, org_a):
    partner = login_as(Role.PARTNER)
    referral = factories.make_referral(org_a, clinician=partner)
    response = client.post(f"/partner/referrals/{referral.public_id}/notes", data={"note": ""})
    assert response.status_code == 422 and b"Rivera" in response.data  # the form came back, with the patient
    assert _phi_reads(db, referral) == 1
    client.get(f"/partner/referrals/{referral.public_id}")
    assert _phi_reads(db, referral) == 2


def test_a_read_request_that_writes_is_refused_in_tests(app, db):
    with app.test_request_context("/", method="GET"):
        token = unit_of_work.start_request()
        try:
            db.session.add(Organization(name="Written by a GET", kind=OrganizationKind.ORTHOPEDICS))
            with pytest.raises(unit_of_work.ReadOnlyRequestError, match="begin_writing"):
                db.session.flush()
            db.session.rollback()
            unit_of_work.begin_writing()  # declared: now it may
            db.session.add(Organization(name="Written after begin_writing", kind=OrganizationKind.ORTHOPEDICS))
            db.session.flush()
        finally:
            unit_of_work.end_request(token)


def test_a_page_view_refreshes_last_seen_without_writing_in_its_read(client, db, login_as):
    from datetime import timedelta

    user = login_as(Role.PARTNER)
    record = db.session.scalar(select(UserSession).where(UserSession.user_id == user.id))
    record.last_seen_at -= timedelta(minutes=5)
    db.session.flush()
    before = record.last_seen_at
    assert client.get("/partner/").status_code == 200
    db.session.refresh(record)
    assert record.last_seen_at > before + timedelta(minutes=4)


def test_a_commit_that_fails_after_the_view_returned_gets_a_503_page_not_a_bare_500(
    client, login_as, org_a, monkeypatch
):
    partner = login_as(Role.PARTNER)
    referral = factories.make_referral(org_a, clinician=partner)

    def locked_commit(self):
        raise _locked()

    monkeypatch.setattr(Session, "commit", locked_commit)
    response = client.post(f"/partner/referrals/{referral.public_id}/notes", data={"note": "Called"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert b"The portal is busy" in response.data and b"Nothing of yours was saved" in response.data
    assert b"Sign out" not in response.data  # drawn without the database: no signed-in navigation
    assert response.headers["Content-Security-Policy"] and response.headers["X-Request-ID"]


def test_a_page_whose_audit_record_cannot_be_stored_is_not_shown(client, login_as, org_a, monkeypatch):
    partner = login_as(Role.PARTNER)
    referral = factories.make_referral(org_a, clinician=partner)

    def cannot_write(session, side):
        raise _locked()

    monkeypatch.setattr(unit_of_work, "_write_alone", cannot_write)
    response = client.get(f"/partner/referrals/{referral.public_id}")
    assert response.status_code == 503 and b"Rivera" not in response.data


@pytest.mark.parametrize(
    "url", ["sqlite:////nonexistent-directory/portal.db", "postgresql://postgres@127.0.0.1:1/nowhere"]
)
def test_a_database_that_cannot_be_reached_is_a_503_to_retry(tmp_path, url):
    app = create_app(config_for(url, tmp_path))
    response = app.test_client().post("/auth/login", data={"email": "a@example.com", "password": "x" * 12})
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert b"briefly unavailable" in response.data and b"Traceback" not in response.data
