"""One-time links: single use, expiry, five wrong answers lock, one link opens one request only,
nothing about the patient in the e-mail or the address, every patient page audited."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal.audit.models import AuditEvent
from portal.core.time import now_utc
from portal.econsent.models import Channel, ConsentRequest, PatientLink, RequestState
from tests import factories
from tests.econsent.helpers import BIRTH, confirm, make_patient, make_request, open_link, walk_to_signed


@pytest.fixture
def staff(db):
    return factories.make_user("staff")


@pytest.fixture
def referral(db, org_a):
    return factories.make_referral(org_a, patient=make_patient())


def test_the_token_leaves_the_address_at_once_and_the_request_is_opened(db, client, staff, referral):
    request, raw = make_request(staff, referral)
    db.session.commit()
    response = open_link(client, raw)
    assert response.status_code == 302 and response.headers["Location"] == "/my-consent/confirm"
    assert raw not in response.headers["Location"]
    db.session.refresh(request)
    assert request.state is RequestState.OPENED and request.opened_at is not None
    page = client.get("/my-consent/confirm")
    assert raw.encode() not in page.data and page.headers["Cache-Control"] == "no-store"
    # Before the patient confirms who they are, nothing about them or their referrer is shown.
    assert (
        b"Ana" not in page.data and b"Rivera" not in page.data and referral.organization.name.encode() not in page.data
    )


def test_a_link_works_once(db, client, app, staff, referral):
    request, raw = make_request(staff, referral)
    db.session.commit()
    walk_to_signed(client, raw)
    again = app.test_client()
    response = open_link(again, raw)
    assert response.status_code == 410 and b"already used" in response.data
    # The browser that signed cannot sign twice either.
    assert client.post("/my-consent/sign", data={"signature_name": "Ana Rivera"}).status_code == 302  # to "done"


def test_two_submissions_at_once_record_one_answer(db, client, app, staff, referral):
    from tests.econsent.helpers import shown_digest

    request, raw = make_request(staff, referral)
    db.session.commit()
    other = app.test_client()
    for browser in (client, other):
        open_link(browser, raw)
        confirm(browser)
    pages = [browser.get("/my-consent/sign") for browser in (client, other)]
    data = {"answer_progress_updates": "yes", "answer_outcome_scores": "yes", "answer_success_story": "no"}
    data.update(signature_name="Ana Rivera", confirm="y")
    first = client.post("/my-consent/sign", data={**data, "text_digest": shown_digest(pages[0].data)})
    second = other.post("/my-consent/sign", data={**data, "text_digest": shown_digest(pages[1].data)})
    assert first.status_code == 302 and first.headers["Location"].endswith("/my-consent/done")
    assert second.status_code == 302 and second.headers["Location"].endswith("/my-consent/done")  # nothing new
    db.session.refresh(request)
    assert len(request.answers) == 3 and request.state is RequestState.SIGNED


def test_a_link_expires_after_seven_days(db, client, staff, referral):
    request, raw = make_request(staff, referral)
    assert timedelta(days=6, hours=23) < request.link_expires_at - now_utc() <= timedelta(days=7)
    db.session.execute(update(PatientLink).values(expires_at=now_utc() - timedelta(seconds=1)))
    db.session.execute(update(ConsentRequest).values(link_expires_at=now_utc() - timedelta(seconds=1)))
    db.session.commit()
    response = open_link(client, raw)
    assert response.status_code == 410 and b"expired" in response.data
    db.session.refresh(request)
    assert request.shown_state(now_utc()).value == "expired"


def test_a_link_that_expires_while_open_stops_working(db, client, staff, referral):
    request, raw = make_request(staff, referral)
    db.session.commit()
    open_link(client, raw)
    confirm(client)
    db.session.execute(update(PatientLink).values(expires_at=now_utc() - timedelta(seconds=1)))
    db.session.commit()
    assert client.get("/my-consent/sign").status_code == 410


def test_five_wrong_dates_of_birth_lock_the_link(db, client, app, staff, referral):
    request, raw = make_request(staff, referral)
    db.session.commit()
    open_link(client, raw)
    wrong = {**BIRTH, "birth_year": "1981"}
    for left in (4, 3, 2, 1):
        response = confirm(client, birth=wrong)
        assert response.status_code == 422
        expected = f"You have {left} {'try' if left == 1 else 'tries'} left."
        assert expected.encode() in response.data
    response = confirm(client, birth=wrong)
    assert response.status_code == 410 and b"locked" in response.data
    # Locked: the right answer no longer helps, in this browser or another.
    assert confirm(client).status_code == 410
    assert open_link(app.test_client(), raw).status_code == 410
    db.session.refresh(request)
    assert request.state is RequestState.LOCKED
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == str(request.public_id))).all()
    assert actions.count("consent_request.identity_failed") == 5 and "consent_request.link_locked" in actions
    failure = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "consent_request.identity_failed"))
    assert failure.actor_id is None and failure.detail["actor"] == "patient"
    assert failure.detail["request"] == str(request.public_id) and failure.patient_id == referral.patient.public_id
    assert "1981" not in str(failure.detail)  # what was typed is never recorded


def test_the_wrong_phone_digits_count_too_and_a_new_link_starts_again(db, client, staff, referral):
    from portal.econsent import services

    request, raw = make_request(staff, referral)
    db.session.commit()
    open_link(client, raw)
    for _ in range(5):
        confirm(client, phone="9999")
    db.session.refresh(request)
    assert request.state is RequestState.LOCKED
    fresh = services.reissue(staff, request, Channel.QR)
    db.session.commit()
    assert request.state is RequestState.SENT
    assert open_link(client, fresh).status_code == 302 and confirm(client).status_code == 302
    assert open_link(client, raw).status_code == 410  # the older link stays dead


@pytest.mark.parametrize(
    "birth,phone",
    [
        ({"birth_month": "13", "birth_day": "2", "birth_year": "1980"}, "0142"),
        ({"birth_month": "2", "birth_day": "30", "birth_year": "1980"}, "0142"),
        ({"birth_month": "x", "birth_day": "", "birth_year": "٣٤"}, "0142"),
        ({"birth_month": "4", "birth_day": "2", "birth_year": "99999"}, "0142"),
        (BIRTH, "12"),
        (BIRTH, "abcd"),
        (BIRTH, "x" * 5000),
    ],
)
def test_junk_in_the_identity_form_is_a_message_and_not_a_failure(db, client, staff, referral, birth, phone):
    request, raw = make_request(staff, referral)
    db.session.commit()
    open_link(client, raw)
    response = confirm(client, birth=birth, phone=phone)
    assert response.status_code == 422
    assert b"Enter" in response.data or b"That is not a real date" in response.data  # says what to fix
    assert db.session.scalar(select(PatientLink.failures)) == 0  # a typo in the format costs no try


def test_one_link_never_opens_another_request(db, client, app, staff, referral, org_a):
    other_patient = make_patient()
    other_referral = factories.make_referral(org_a, patient=other_patient)
    mine, raw_mine = make_request(staff, referral)
    theirs, raw_theirs = make_request(staff, other_referral)
    db.session.commit()
    walk_to_signed(client, raw_mine)
    # Only my request is reachable: no page takes a request id, the session names my link alone.
    assert str(theirs.public_id).encode() not in client.get("/my-consent/done").data
    # Opening the other link in the same browser forgets mine and asks again who is there.
    open_link(client, raw_theirs)
    assert client.get("/my-consent/done").status_code == 302  # back to confirming who you are
    assert client.get("/my-consent/copy.pdf").status_code == 404
    assert client.get("/my-consent/sign").headers["Location"].endswith("/my-consent/confirm")
    # My date of birth does not open the other patient's request (the factory patients share it, so change it).
    from datetime import date

    other_patient.birth_date = date(1975, 1, 1)
    db.session.commit()
    assert confirm(client).status_code == 422
    db.session.refresh(theirs)
    assert theirs.state is RequestState.OPENED


def test_a_forged_or_missing_link_is_a_plain_page(db, client):
    for path in ("/my-consent/open?t=forged", "/my-consent/open", "/my-consent/confirm", "/my-consent/sign"):
        response = client.get(path)
        assert response.status_code == 404 and b"This link does not work" in response.data, path
        assert b"Este enlace no funciona" in response.data


def test_identity_counts_for_a_while_only(db, client, app, staff, referral):
    import time

    request, raw = make_request(staff, referral)
    db.session.commit()
    open_link(client, raw)
    confirm(client)
    assert client.get("/my-consent/sign").status_code == 200
    with client.session_transaction() as s:
        s["patient_consent"] = {**s["patient_consent"], "verified_at": int(time.time()) - 21 * 60}
    assert client.get("/my-consent/sign").headers["Location"].endswith("/my-consent/confirm")


def test_the_email_and_the_address_carry_an_opaque_token_only(db, client, staff, referral, outbox):
    from portal.notifications.rendering import build_message

    patient = referral.patient
    request, raw = make_request(staff, referral, channel=Channel.EMAIL)
    db.session.commit()
    (message,) = outbox(patient.email)
    assert message.template == "patient_consent_request" and set(message.context) == {"link", "days"}
    assert message.context["link"].endswith(f"/my-consent/open?t={raw}")
    email = build_message(message_id="x", recipient=patient.email, template=message.template, context=message.context)
    text = "\n".join(
        [str(email["Subject"]), email.get_body(("plain",)).get_content(), email.get_body(("html",)).get_content()]
    )
    for value in (
        patient.given_name,
        patient.family_name,
        "1980",
        "0142",
        "555",
        referral.organization.name,
        str(patient.public_id),
        str(request.public_id),
    ):
        assert value not in text, value
    walk_to_signed(client, raw)
    copy = outbox(patient.email)[-1]
    assert copy.template == "patient_consent_copy" and set(copy.context) == {"link"}
    # No address a patient page sends the browser to holds an id: the session names the link.
    import re

    for path in ("/my-consent/confirm", "/my-consent/sign", "/my-consent/done"):
        response = client.get(path)
        assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", response.headers.get("Location", "")), path


def test_every_patient_page_is_audited_as_the_patient_through_the_request(db, client, staff, referral):
    request, raw = make_request(staff, referral)
    db.session.commit()
    walk_to_signed(client, raw)
    client.get("/my-consent/done")
    client.get("/my-consent/copy.pdf")
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.object_id == str(request.public_id)).order_by(AuditEvent.id)
    ).all()
    views = [e.detail.get("view") for e in events if e.action == "phi.read"]
    assert views == ["patient_identity", "patient_sign", "patient_done"]
    actions = {e.action for e in events}
    assert {
        "consent_request.opened",
        "consent_request.identity_confirmed",
        "consent_request.signed",
        "consent_request.copy_downloaded",
    } <= actions
    for event in events:
        if event.detail.get("actor") == "patient":
            assert event.actor_id is None and event.detail["request"] == str(request.public_id)
            assert event.patient_id == referral.patient.public_id


def test_a_link_opened_where_someone_is_signed_in_signs_them_out_first(app, db, staff, referral):
    from tests.conftest import sign_in

    request, raw = make_request(staff, referral)
    db.session.commit()
    desk = app.test_client()
    sign_in(desk, staff.email)
    response = open_link(desk, raw)
    assert response.status_code == 302 and response.headers["Location"] == "/my-consent/confirm"
    assert desk.get("/staff/").headers["Location"].endswith("/auth/login")
    assert confirm(desk).status_code == 302


def test_the_copy_email_holds_a_link_and_nothing_about_the_patient_or_their_answers(
    db, client, staff, referral, outbox
):
    """The design allows the practice's name and one opaque link: no name, birth date, phone, referrer,
    answer, verification code or id, in the subject, the text or the HTML."""
    from portal.notifications.rendering import build_message

    patient = referral.patient
    request, raw = make_request(staff, referral, channel=Channel.EMAIL)
    db.session.commit()
    walk_to_signed(client, raw, {"progress_updates": "yes", "outcome_scores": "no", "success_story": "no"})
    db.session.refresh(request)
    copy = outbox(patient.email)[-1]
    assert copy.template == "patient_consent_copy" and set(copy.context) == {"link"}
    token = copy.context["link"].rpartition("/my-consent/open?t=")[2]
    assert len(token) >= 40 and token != raw  # a new link (the manage link), opaque
    email = build_message(message_id="x", recipient=patient.email, template=copy.template, context=copy.context)
    assert email["List-Unsubscribe"] is None  # the patient has no account and no preferences
    text = "\n".join(
        [str(email["Subject"]), email.get_body(("plain",)).get_content(), email.get_body(("html",)).get_content()]
    )
    assert "Your signed copy is ready" in text and "Su copia firmada está lista" in text  # both languages
    for value in (
        patient.given_name,
        patient.family_name,
        "Ana Rivera",  # the typed signature
        "1980",
        "04/02",
        "0142",
        "555",
        referral.organization.name,
        request.verification_code,
        request.text_digest,
        str(patient.public_id),
        str(request.public_id),
        "progress",
        "Outcome",
        "story",
    ):
        assert value not in text, value


def test_each_dead_link_says_why_and_what_to_do(db, app, staff, referral, outbox):
    """Replaced by a resend, cancelled by staff, used to stop sharing: a 410 page that says which, never a 500."""
    from portal.econsent import services

    request, first = make_request(staff, referral)
    second = services.reissue(staff, request, Channel.QR)
    db.session.commit()
    replaced = open_link(app.test_client(), first)
    assert replaced.status_code == 410 and b"A newer link replaced this one" in replaced.data
    services.cancel(staff, request)
    db.session.commit()
    for raw in (first, second):
        cancelled = open_link(app.test_client(), raw)
        assert cancelled.status_code == 410 and b"This link was cancelled" in cancelled.data
        assert b"already used" not in cancelled.data

    other, raw = make_request(staff, factories.make_referral(referral.organization, patient=make_patient()))
    db.session.commit()
    walk_to_signed(app.test_client(), raw)
    used = open_link(app.test_client(), raw)
    assert used.status_code == 410 and b"This link was already used" in used.data
    manage = outbox(other.patient.email)[-1].context["link"].rpartition("t=")[2]
    patient = app.test_client()
    open_link(patient, manage)
    confirm(patient)
    assert patient.post("/my-consent/manage", data={"confirm": "y"}).status_code == 302
    stopped = open_link(app.test_client(), manage)
    assert stopped.status_code == 410 and b"Sharing has already stopped" in stopped.data
