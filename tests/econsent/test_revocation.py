"""Self-service withdrawal through the manage link: identity checked the same way, effective at once,
exactly the staff revocation (updates hidden, stories withdrawn)."""

import re

from sqlalchemy import select

from portal.consent.models import Consent, ConsentStatus
from portal.econsent.models import Channel
from tests import factories
from tests.conftest import sign_in
from tests.consent.helpers import add_update
from tests.econsent.helpers import BIRTH, confirm, make_patient, make_request, open_link, walk_to_signed


def _manage_token(outbox, email) -> str:
    (message,) = [m for m in outbox(email) if m.template == "patient_consent_copy"][-1:]
    return re.search(r"t=([\w-]+)$", message.context["link"]).group(1)


def test_withdrawal_through_the_patient_link_hides_updates_at_once(app, db, client, org_a, outbox):
    staff = factories.make_user("staff")
    partner = factories.make_user("partner", org_a)
    referral = factories.make_referral(org_a, partner, patient=make_patient())
    update = add_update(referral, staff, body="Climbs stairs without the rail.")
    request, raw = make_request(staff, referral)
    db.session.commit()
    walk_to_signed(client, raw)
    partner_client = app.test_client()
    sign_in(partner_client, partner.email)
    chart = f"/partner/patients/{referral.patient.public_id}"
    assert update.body.encode() in partner_client.get(chart).data

    manage = _manage_token(outbox, referral.patient.email)
    later = app.test_client()  # weeks later, on another phone, from the link in the PDF or the e-mail
    assert open_link(later, manage).status_code == 302
    assert later.get("/my-consent/manage").headers["Location"].endswith("/my-consent/confirm")  # who is it?
    assert confirm(later).headers["Location"].endswith("/my-consent/manage")
    page = later.get("/my-consent/manage")
    assert page.status_code == 200 and b"Stop sharing now" in page.data
    refused = later.post("/my-consent/manage", data={})
    assert refused.status_code == 422 and b"Check the box" in refused.data
    assert later.post("/my-consent/manage", data={"confirm": "y"}).status_code == 302
    assert b"Sharing has stopped" in later.get("/my-consent/manage").data

    assert update.body.encode() not in partner_client.get(chart).data  # at once, no job
    newest = db.session.scalar(select(Consent).where(Consent.superseded_at.is_(None)))
    assert newest.status is ConsentStatus.REVOKED and newest.is_by_patient and newest.recorded_by_id is None
    assert newest.source_label == "Withdrawn by the patient"
    # The link died with the withdrawal.
    assert open_link(app.test_client(), manage).status_code == 410


def test_withdrawal_also_withdraws_the_story_consent(app, db, client, org_a, outbox):
    from portal.consent.policy import publication_permitted

    staff = factories.make_user("staff")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral)
    db.session.commit()
    walk_to_signed(client, raw)
    patient_id = referral.patient_id
    assert db.session.scalar(select(publication_permitted(patient_id)))
    later = app.test_client()
    open_link(later, _manage_token(outbox, referral.patient.email))
    confirm(later)
    later.post("/my-consent/manage", data={"confirm": "y"})
    assert not db.session.scalar(select(publication_permitted(patient_id)))


def test_the_manage_link_checks_identity_and_locks_the_same_way(app, db, client, org_a, outbox):
    staff = factories.make_user("staff")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral)
    db.session.commit()
    walk_to_signed(client, raw)
    manage = _manage_token(outbox, referral.patient.email)
    stranger = app.test_client()
    open_link(stranger, manage)
    assert stranger.post("/my-consent/manage", data={"confirm": "y"}).status_code == 302  # to confirming first
    for _ in range(5):
        confirm(stranger, birth={**BIRTH, "birth_day": "3"})
    assert confirm(stranger).status_code == 410
    assert db.session.scalar(select(Consent).where(Consent.superseded_at.is_(None))).status is ConsentStatus.ACTIVE
    # Staff send a fresh link to the copy; it works.
    from portal.econsent import services

    fresh = services.reissue(staff, request, Channel.QR)
    db.session.commit()
    again = app.test_client()
    open_link(again, fresh)
    assert confirm(again).headers["Location"].endswith("/my-consent/manage")


def test_staff_revocation_shows_on_the_request_and_the_patient_page(app, db, client, org_a, outbox):
    staff = factories.make_user("staff")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral)
    db.session.commit()
    walk_to_signed(client, raw)
    staff_client = app.test_client()
    sign_in(staff_client, staff.email)
    consent = db.session.scalar(select(Consent))
    staff_client.post(
        f"/staff/patients/{referral.patient.public_id}/consents/{consent.public_id}/revoke", data={"reason": "Asked"}
    )
    assert b"Revoked" in staff_client.get(f"/staff/consent-requests/{request.public_id}").data
    later = app.test_client()
    open_link(later, _manage_token(outbox, referral.patient.email))
    confirm(later)
    page = later.get("/my-consent/manage")
    assert b"Sharing has stopped" in page.data and b"Stop sharing now" not in page.data
    assert later.post("/my-consent/manage", data={"confirm": "y"}).status_code == 409
