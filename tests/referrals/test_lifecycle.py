"""The referral lifecycle: legal moves, refusals, conflicts, and one timeline for both sides."""

import itertools

import pytest

from portal.referrals.lifecycle import TRANSITIONS, IllegalTransition, Status, transition
from portal.referrals.services import ReferralError, change_status
from tests import factories
from tests.clock import practice_today
from tests.conftest import sign_in

LEGAL = {(s, t.target) for s, ts in TRANSITIONS.items() for t in ts}


@pytest.mark.parametrize("current,target", sorted(itertools.product(Status, Status)))
def test_state_machine_allows_exactly_the_declared_moves(current, target):
    if (current, target) in LEGAL:
        assert transition(current, target).target is target
    else:
        with pytest.raises(IllegalTransition, match="cannot become"):
            transition(current, target)


def test_terminal_states_have_no_way_out():
    for status in (Status.DECLINED, Status.DISCHARGED, Status.CANCELLED):
        assert TRANSITIONS[status] == () and not status.is_open


@pytest.fixture
def staff_client(app, db):
    client = app.test_client()
    staff = factories.make_user("staff")
    sign_in(client, staff.email)
    client.user = staff
    return client


def _move(client, referral, target, **form):
    return client.post(
        f"/staff/referrals/{referral.public_id}/status", data={"target": target, "version": referral.version, **form}
    )


def test_full_path_to_discharge_is_visible_to_the_referrer(client, login_as, staff_client, db, outbox):
    partner = login_as("partner")
    referral = factories.make_referral(partner.organization, partner)
    assert _move(staff_client, referral, "accepted").status_code == 302
    db.session.refresh(referral)
    assert (
        _move(
            staff_client, referral, "scheduled", first_visit_at="2030-03-04T09:30", appointment_mode="telehealth"
        ).status_code
        == 302
    )
    db.session.refresh(referral)
    assert referral.first_visit_at.isoformat().startswith("2030-03-04T15:30")  # 09:30 Chicago is 15:30 UTC
    # Care starts on or after the first visit's day (issue 15): the visit moves to today first.
    assert _move(staff_client, referral, "in_care").status_code == 422
    db.session.refresh(referral)
    today = f"{practice_today().isoformat()}T00:05"
    assert (
        _move(staff_client, referral, "scheduled", first_visit_at=today, appointment_mode="in_clinic").status_code
        == 302
    )
    for target in ("in_care", "discharged"):
        db.session.refresh(referral)
        assert _move(staff_client, referral, target).status_code == 302
    page = client.get(f"/partner/referrals/{referral.public_id}").data.decode()
    for step in ("Submitted → Accepted", "Accepted → Scheduled", "Scheduled → In care", "In care → Discharged"):
        assert step in page
    assert [m.context["status_label"] for m in outbox(partner.email)] == [
        "Accepted",
        "Scheduled",
        "Scheduled",
        "In care",
        "Discharged",
    ]
    assert all("reference" in m.context and "Rivera" not in str(m.context) for m in outbox(partner.email))


def test_decline_needs_a_reason(staff_client, db):
    referral = factories.make_referral(factories.make_organization())
    response = _move(staff_client, referral, "declined")
    assert response.status_code == 422 and b"Give a reason to decline" in response.data
    db.session.refresh(referral)
    assert referral.status is Status.SUBMITTED


def test_schedule_needs_date_and_mode(staff_client, db):
    referral = factories.make_referral(factories.make_organization(), status=Status.ACCEPTED)
    response = _move(staff_client, referral, "scheduled")
    assert response.status_code == 422 and b"first visit" in response.data


def test_illegal_transition_is_refused_clearly(staff_client, db):
    referral = factories.make_referral(factories.make_organization())
    response = _move(staff_client, referral, "discharged")
    assert response.status_code == 422 and b"Not a valid choice" in response.data
    db.session.refresh(referral)
    assert referral.status is Status.SUBMITTED


def test_stale_form_gets_a_conflict_not_a_double_move(staff_client, db):
    referral = factories.make_referral(factories.make_organization())
    stale_version = referral.version
    assert _move(staff_client, referral, "accepted").status_code == 302
    response = staff_client.post(
        f"/staff/referrals/{referral.public_id}/status",
        data={"target": "cancelled", "note": "dup", "version": stale_version},
    )
    assert response.status_code in (409, 422)
    db.session.refresh(referral)
    assert referral.status is Status.ACCEPTED


def test_service_refuses_second_writer_with_old_version(db):
    referral = factories.make_referral(factories.make_organization())
    staff = factories.make_user("staff")
    version = referral.version
    change_status(staff, referral, Status.ACCEPTED, expected_version=version)
    with pytest.raises(ReferralError, match="Someone else changed"):
        change_status(staff, referral, Status.DECLINED, note="x", expected_version=version)


def test_partner_cancels_before_scheduling_only(client, login_as, db):
    partner = login_as("partner")
    open_one = factories.make_referral(partner.organization, partner)
    scheduled = factories.make_referral(partner.organization, partner, status=Status.SCHEDULED)
    assert (
        client.post(f"/partner/referrals/{open_one.public_id}/cancel", data={"reason": "Patient moved"}).status_code
        == 302
    )
    db.session.refresh(open_one)
    assert open_one.status is Status.CANCELLED and open_one.events[-1].note == "Patient moved"
    response = client.post(f"/partner/referrals/{scheduled.public_id}/cancel", data={"reason": "Changed mind"})
    assert response.status_code == 422 and b"call the practice" in response.data


def test_partner_adds_note_and_attachment(client, login_as, db):
    import io

    partner = login_as("partner")
    referral = factories.make_referral(partner.organization, partner)
    response = client.post(
        f"/partner/referrals/{referral.public_id}/notes",
        content_type="multipart/form-data",
        data={"note": "MRI report attached", "attachments": [(io.BytesIO(factories.PDF_BYTES), "mri.pdf")]},
    )
    assert response.status_code == 302
    page = client.get(f"/partner/referrals/{referral.public_id}").data.decode()
    assert "MRI report attached" in page and "mri.pdf" in page


def test_staff_queue_lists_urgent_first_then_oldest(staff_client, db):
    from datetime import timedelta

    from portal.core.time import now_utc
    from portal.referrals.models import Urgency

    org = factories.make_organization()
    old = factories.make_referral(org, submitted_at=now_utc() - timedelta(days=5))
    new_urgent = factories.make_referral(org, urgency=Urgency.URGENT, submitted_at=now_utc())
    newer = factories.make_referral(org, submitted_at=now_utc() - timedelta(days=1))
    page = staff_client.get("/staff/referrals/").data.decode()
    positions = [page.index(r.reference) for r in (new_urgent, old, newer)]
    assert positions == sorted(positions)
