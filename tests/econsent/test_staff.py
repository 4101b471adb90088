"""Staff ask, follow, resend and cancel; the chart shows each request's state; the open list pages."""

import pytest
from sqlalchemy import select

from portal.econsent.models import Channel, ConsentRequest, RequestState
from tests import factories
from tests.conftest import sign_in
from tests.econsent.helpers import make_patient, make_request, open_link, walk_to_signed


@pytest.fixture
def staff_client(app, db):
    client = app.test_client()
    user = factories.make_user("staff")
    sign_in(client, user.email)
    return client, user


def _form(org, **extra):
    return {
        "organization": str(org.public_id),
        "clinician": "",
        "topics": ["progress_updates", "outcome_scores"],
        "channel": "qr",
        "language": "es",
        **extra,
    }


def test_staff_ask_with_a_qr_code_shown_once(db, staff_client, org_a):
    client, staff = staff_client
    referral = factories.make_referral(org_a, patient=make_patient())
    new = client.get(f"/staff/patients/{referral.patient.public_id}/consent-requests/new")
    assert new.status_code == 200 and f'selected value="{org_a.public_id}"'.encode() in new.data  # preselected
    response = client.post(f"/staff/patients/{referral.patient.public_id}/consent-requests/new", data=_form(org_a))
    assert response.status_code == 302
    request = db.session.scalar(select(ConsentRequest))
    assert request.language.value == "es" and request.state is RequestState.SENT and request.channel is Channel.QR
    page = client.get(response.headers["Location"])
    assert b"data:image/svg+xml" in page.data and b"/my-consent/open?t=" in page.data
    again = client.get(response.headers["Location"])
    assert b"data:image/svg+xml" not in again.data  # the token is never stored: shown once
    chart = client.get(f"/staff/patients/{referral.patient.public_id}")
    assert b"Requests to the patient" in chart.data and b"Sent" in chart.data


@pytest.mark.parametrize(
    "extra,message",
    [
        ({"topics": []}, b"Choose at least one thing to ask about."),
        ({"channel": "email"}, b"no e-mail address on file"),
        ({"organization": "not-a-uuid"}, b"Not a valid choice"),
        ({"consent_expires_on": "2001-01-01"}, b"must last past today"),
        ({"channel": "fax"}, b"Not a valid choice"),
    ],
)
def test_bad_requests_are_refused_with_a_message(db, staff_client, org_a, extra, message):
    client, _ = staff_client
    referral = factories.make_referral(org_a, patient=make_patient(email=None))
    response = client.post(
        f"/staff/patients/{referral.patient.public_id}/consent-requests/new", data=_form(org_a, **extra)
    )
    assert response.status_code == 422 and message in response.data
    assert db.session.scalar(select(ConsentRequest)) is None


def test_a_patient_without_a_phone_cannot_be_asked(db, staff_client, org_a):
    client, _ = staff_client
    patient = make_patient()
    patient.phone = None
    factories.make_referral(org_a, patient=patient)
    response = client.post(f"/staff/patients/{patient.public_id}/consent-requests/new", data=_form(org_a))
    assert response.status_code == 422 and b"no phone number on file" in response.data


def test_resend_and_cancel(db, staff_client, org_a, outbox):
    client, staff = staff_client
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral)
    db.session.commit()
    url = f"/staff/consent-requests/{request.public_id}"
    assert client.post(f"{url}/resend", data={"channel": "email"}).status_code == 302
    assert [m.template for m in outbox(referral.patient.email)] == ["patient_consent_request"]
    assert open_link(client.application.test_client(), raw).status_code == 410  # the older link died
    assert client.post(f"{url}/resend", data={"channel": "nonsense"}).status_code == 422
    assert client.post(f"{url}/cancel").status_code == 302
    db.session.refresh(request)
    assert request.state is RequestState.CANCELLED
    assert client.post(f"{url}/cancel").status_code == 409
    assert client.post(f"{url}/resend", data={"channel": "qr"}).status_code == 409
    assert b"Cancelled" in client.get(url).data


def test_staff_download_the_signed_copy(app, db, staff_client, org_a):
    client, staff = staff_client
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral)
    db.session.commit()
    assert client.get(f"/staff/consent-requests/{request.public_id}/copy").status_code == 404
    walk_to_signed(app.test_client(), raw)
    detail = client.get(f"/staff/consent-requests/{request.public_id}")
    assert b"Signed by the patient" in detail.data and b"text version 1" in detail.data
    copy = client.get(f"/staff/consent-requests/{request.public_id}/copy")
    assert copy.status_code == 200 and copy.data.startswith(b"%PDF-")
    chart = client.get(f"/staff/patients/{referral.patient.public_id}")
    # Who made it (the patient, not staff) and how, on the patient's chart.
    assert "Signed by the patient · Signed by the patient online".encode() in chart.data
    assert b"Recorded by staff" not in chart.data


def test_the_open_list_pages_with_a_fixed_number_of_statements(db, staff_client, org_a, count_queries):
    client, staff = staff_client
    referral = factories.make_referral(org_a, patient=make_patient())

    def fill(n):
        for _ in range(n):
            make_request(staff, referral)
        db.session.commit()

    fill(3)
    client.get("/staff/consent-requests")  # warm up (session, templates)
    with count_queries() as few:
        page = client.get("/staff/consent-requests?per_page=2")
    assert page.status_code == 200 and b'rel="next"' in page.data
    fill(30)
    with count_queries() as many:
        client.get("/staff/consent-requests?per_page=25")
    assert many.n == few.n
    # Walk all pages: each request exactly once.
    seen, url = [], "/staff/consent-requests?per_page=7"
    import re

    while url:
        html = client.get(url).data.decode()
        seen += re.findall(r"/staff/consent-requests/([0-9a-f-]{36})", html)
        nxt = re.search(r'href="([^"]+)" rel="next"', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    assert len(seen) == len(set(seen)) == 33
