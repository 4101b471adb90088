"""Junk in every field of every page of the feature is a clear 4xx (or a page that says what to fix), never a 5xx."""

from urllib.parse import urlencode

import pytest

from portal.econsent.models import Language
from tests import factories
from tests.conftest import sign_in
from tests.econsent.helpers import confirm, make_patient, make_request, open_link, walk_to_signed

JUNK = ["x" * 20_000, "\x00\x07\u202e٣٤\ufeff", "2026-02-30", "-1", "9" * 40, "not-a-uuid", "<script>", ""]
FIELDS = [
    "t",
    "birth_month",
    "birth_day",
    "birth_year",
    "phone_last4",
    "answer_progress_updates",
    "answer_outcome_scores",
    "answer_success_story",
    "signature_name",
    "confirm",
    "text_digest",
    "language",
    "back",
    "organization",
    "clinician",
    "topics",
    "consent_expires_on",
    "channel",
    "hand_over",
    "title",
    "body",
    "cursor",
    "per_page",
]


def _junk(value):
    return dict.fromkeys(FIELDS, value)


@pytest.mark.parametrize("junk", JUNK, ids=["long", "control", "date", "negative", "huge", "uuid", "markup", "empty"])
def test_patient_pages_answer_junk_without_a_server_error(app, db, org_a, outbox, junk):
    staff = factories.make_user("staff")
    failures = []
    # At each step of the walk: before the link, after opening, after confirming, after signing, on the manage link.
    sign_referral = factories.make_referral(org_a, patient=make_patient())
    _, raw = make_request(staff, sign_referral)
    db.session.commit()
    browser = app.test_client()
    stages = [
        ("nothing", lambda: None),
        ("opened", lambda: open_link(browser, raw)),
        ("confirmed", lambda: confirm(browser)),
    ]
    for stage, step in stages:
        step()
        failures += _probe(browser, junk, stage)
    done_referral = factories.make_referral(org_a, patient=make_patient())
    _, raw2 = make_request(staff, done_referral)
    db.session.commit()
    signed = app.test_client()
    walk_to_signed(signed, raw2)
    failures += _probe(signed, junk, "signed")
    manage = outbox(done_referral.patient.email)[-1].context["link"].rpartition("t=")[2]
    later = app.test_client()
    open_link(later, manage)
    failures += _probe(later, junk, "manage opened")
    confirm(later)
    failures += _probe(later, junk, "manage confirmed")  # a truthy junk "confirm" stops sharing: fine
    assert failures == []


def _probe(browser, junk, stage):
    failures = []
    for path in (
        "/my-consent/open",
        "/my-consent/confirm",
        "/my-consent/sign",
        "/my-consent/done",
        "/my-consent/copy.pdf",
        "/my-consent/manage",
    ):
        response = browser.get(path + "?" + urlencode(_junk(junk)))
        if response.status_code >= 500:
            failures.append(f"{stage} GET {path}: {response.status_code}")
    for path in ("/my-consent/confirm", "/my-consent/sign", "/my-consent/manage", "/my-consent/language"):
        response = browser.post(path, data=_junk(junk))
        if response.status_code >= 500:
            failures.append(f"{stage} POST {path}: {response.status_code}")
    return failures


@pytest.mark.parametrize("junk", JUNK, ids=["long", "control", "date", "negative", "huge", "uuid", "markup", "empty"])
def test_staff_and_admin_pages_answer_junk_without_a_server_error(app, db, org_a, junk):
    staff = factories.make_user("staff")
    admin = factories.make_user("admin")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral)
    db.session.commit()
    client = app.test_client()
    sign_in(client, admin.email)
    failures = []
    base = f"/staff/consent-requests/{request.public_id}"
    for method, path in [
        ("GET", f"/staff/patients/{referral.patient.public_id}/consent-requests/new"),
        ("POST", f"/staff/patients/{referral.patient.public_id}/consent-requests/new"),
        ("GET", "/staff/consent-requests"),
        ("GET", base),
        ("POST", f"{base}/resend"),
        ("POST", f"{base}/cancel"),
        ("GET", f"{base}/copy"),
        ("GET", "/admin/consent-texts"),
        ("GET", "/admin/consent-texts/progress_updates/es"),
        ("POST", "/admin/consent-texts/progress_updates/es"),
        ("POST", f"{base}/kiosk"),  # last: a ticked box would sign the admin out
    ]:
        if method == "POST":
            response = client.post(path, data=_junk(junk))
        else:
            response = client.get(path + "?" + urlencode(_junk(junk)))
        if response.status_code >= 500:
            failures.append(f"{method} {path}: {response.status_code}")
    assert failures == []


def test_a_form_sent_without_its_token_says_the_page_expired_and_costs_nothing(app, db, org_a):
    """With CSRF protection on (as in production): a stale or forged post is a 400 on the patient's
    own page, in their language, with the way back; nothing is recorded and no try is spent."""
    import time

    from sqlalchemy import select

    from portal.econsent.models import PatientLink, RequestState

    staff = factories.make_user("staff")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral, language=Language.SPANISH)
    db.session.commit()
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        browser = app.test_client()
        open_link(browser, raw)
        response = confirm(browser, birth={"birth_month": "1", "birth_day": "1", "birth_year": "1999"})
        assert response.status_code == 400 and b'<html lang="es">' in response.data
        assert "Esta página venció".encode() in response.data and b'href="/my-consent/confirm"' in response.data
        assert db.session.scalar(select(PatientLink.failures)) == 0  # not an identity check: no try spent
        with browser.session_transaction() as s:  # as if identity had been confirmed with the token
            s["patient_consent"] = {**s["patient_consent"], "verified_at": int(time.time())}
        signed = browser.post(
            "/my-consent/sign",
            data={"answer_progress_updates": "yes", "signature_name": "Ana Rivera", "confirm": "y"},
        )
        assert signed.status_code == 400 and b'href="/my-consent/sign"' in signed.data
        switched = browser.post("/my-consent/language", data={"language": "en", "back": "sign"})
        assert switched.status_code == 400 and b'href="/my-consent/confirm"' in switched.data
        assert browser.post("/my-consent/manage", data={"confirm": "y"}).status_code == 400
        db.session.refresh(request)
        assert request.state is RequestState.OPENED and request.language is Language.SPANISH
        assert request.answers == []
        # Without a patient's link in the browser: the plain bilingual page.
        assert app.test_client().post("/my-consent/confirm").status_code == 404
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
