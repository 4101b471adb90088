"""The patient's own consent, end to end: open, confirm, sign, copy; declined; the referrer sees what it allows."""

from sqlalchemy import select

from portal.consent.models import Consent, Method
from portal.econsent.models import ConsentRequest, RequestState, Topic
from tests import factories
from tests.consent.helpers import add_update
from tests.econsent.helpers import make_patient, make_request, open_link, walk_to_signed


def test_patient_signs_and_the_referrer_sees_what_it_allows(app, db, client, org_a, outbox):
    staff = factories.make_user("staff")
    partner = factories.make_user("partner", org_a)
    referral = factories.make_referral(org_a, partner, patient=make_patient())
    update = add_update(referral, staff)
    request, raw = make_request(staff, referral)
    db.session.commit()

    page = walk_to_signed(client, raw, {"progress_updates": "yes", "outcome_scores": "no", "success_story": "no"})
    assert b"Updates about your progress" in page.data
    done = client.get("/my-consent/done")
    assert done.status_code == 200 and b"Download your copy" in done.data
    pdf = client.get("/my-consent/copy.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")

    request = db.session.scalar(select(ConsentRequest))
    assert request.state is RequestState.SIGNED
    consent = db.session.get(Consent, request.consent_id)
    assert consent.method is Method.PATIENT_ESIGNATURE and consent.is_by_patient and consent.recorded_by_id is None
    assert consent.allows_progress_notes and consent.allows_discharge_summary and not consent.allows_outcome_scores
    assert consent.document_id == request.document_id

    partner_client = app.test_client()
    from tests.conftest import sign_in

    sign_in(partner_client, partner.email)
    assert update.body.encode() in partner_client.get(f"/partner/patients/{referral.patient.public_id}").data
    assert [m.template for m in outbox("ana.rivera@mail.example")] == ["patient_consent_copy"]


def test_spanish_chosen_by_the_patient_is_remembered_and_signed_in_spanish(db, client, org_a):
    staff = factories.make_user("staff")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral, topics=(Topic.PROGRESS_UPDATES,))
    db.session.commit()
    assert open_link(client, raw).status_code == 302
    page = client.get("/my-consent/confirm")
    assert b'<html lang="en">' in page.data and b"Confirm who you are" in page.data
    switched = client.post("/my-consent/language", data={"language": "es", "back": "identity"})
    assert switched.status_code == 302 and switched.headers["Location"].endswith("/my-consent/confirm")
    page = client.get("/my-consent/confirm")
    assert b'<html lang="es">' in page.data and "Confirme quién es usted".encode() in page.data
    db.session.refresh(request)
    assert request.language.value == "es"  # remembered on the request: the next link opens in Spanish

    from tests.econsent.helpers import confirm, sign

    assert confirm(client).status_code == 302
    response, sign_page = sign(client, {"progress_updates": "yes"})
    assert b"Noticias sobre su progreso" in sign_page.data
    assert "¿Está de acuerdo?".encode() in sign_page.data
    assert response.status_code == 302
    done = client.get("/my-consent/done")
    assert "Gracias. Sus respuestas están guardadas.".encode() in done.data
    db.session.refresh(request)
    assert request.state is RequestState.SIGNED and request.language.value == "es"
    assert {a.text.language.value for a in request.answers} == {"es"}


def test_no_to_everything_is_declined_with_a_copy_and_no_consent(db, client, org_a):
    staff = factories.make_user("staff")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral)
    db.session.commit()
    walk_to_signed(client, raw, {"progress_updates": "no", "outcome_scores": "no", "success_story": "no"})
    db.session.refresh(request)
    assert request.state is RequestState.DECLINED and request.consent_id is None and request.document_id
    assert db.session.scalar(select(Consent)) is None
    assert b"You said no to everything" in client.get("/my-consent/done").data
    assert client.get("/my-consent/copy.pdf").data.startswith(b"%PDF-")


def test_missing_answers_name_and_box_are_refused_with_messages(db, client, org_a):
    from tests.econsent.helpers import confirm, sign

    staff = factories.make_user("staff")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral)
    db.session.commit()
    open_link(client, raw)
    confirm(client)
    response, _ = sign(client, {"progress_updates": "yes"})
    assert response.status_code == 422 and b"Choose yes or no for each part." in response.data
    response, _ = sign(client, name="   ")
    assert response.status_code == 422 and b"Type your full name to sign." in response.data
    response, _ = sign(client, confirm_box=False)
    assert response.status_code == 422 and b"Check the box" in response.data
    db.session.refresh(request)
    assert request.state is RequestState.OPENED and request.answers == []


def test_kiosk_signs_the_staff_member_out_and_hands_over_the_tablet(app, db, org_a):
    from tests.conftest import sign_in

    staff = factories.make_user("staff")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, _ = make_request(staff, referral)
    db.session.commit()
    tablet = app.test_client()
    sign_in(tablet, staff.email)
    refused = tablet.post(f"/staff/consent-requests/{request.public_id}/kiosk")
    assert refused.status_code == 422  # never by accident
    response = tablet.post(f"/staff/consent-requests/{request.public_id}/kiosk", data={"hand_over": "y"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/my-consent/confirm")
    assert tablet.get("/staff/").headers["Location"].endswith("/auth/login")  # signed out
    from tests.econsent.helpers import confirm, sign

    assert confirm(tablet).status_code == 302
    assert sign(tablet)[0].status_code == 302
    done = tablet.get("/my-consent/done")
    assert b"Download your copy" not in done.data  # the copy goes to the patient's e-mail, not the tablet
    assert tablet.get("/my-consent/copy.pdf").status_code == 404
    finished = tablet.post("/my-consent/finish")
    assert finished.status_code == 200 and b"hand it back" in finished.data
    assert tablet.get("/my-consent/done").status_code == 404  # nothing of the patient is left in this browser
