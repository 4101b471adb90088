"""Building requests and walking the patient's pages in tests."""

import re

from portal.econsent import services
from portal.econsent.models import Channel, Language, Topic
from tests import factories

BIRTH = {"birth_month": "4", "birth_day": "2", "birth_year": "1980"}  # factories.make_patient's
PHONE_LAST4 = "0142"
ALL_TOPICS = (Topic.PROGRESS_UPDATES, Topic.OUTCOME_SCORES, Topic.SUCCESS_STORY)


def make_patient(email: str | None = "ana.rivera@mail.example"):
    patient = factories.make_patient()
    patient.email = email
    return patient


def make_request(
    staff,
    referral,
    *,
    topics=ALL_TOPICS,
    channel=Channel.QR,
    language=Language.ENGLISH,
    expires_on=None,
    clinician=None,
):
    """A request for the referral's patient, shared with the referring organization: (request, raw token)."""
    from portal.extensions import db
    from portal.partners.models import Organization

    organization = db.session.get(Organization, referral.organization_id)
    return services.create_request(
        staff,
        referral.patient,
        organization=organization,
        clinician=clinician,
        topics=list(topics),
        consent_expires_on=expires_on,
        channel=channel,
        language=language,
    )


def open_link(client, raw):
    return client.get(f"/my-consent/open?t={raw}")


def confirm(client, birth=None, phone=PHONE_LAST4):
    return client.post("/my-consent/confirm", data={**(birth or BIRTH), "phone_last4": phone})


def shown_digest(html: bytes) -> str:
    return re.search(rb'name="text_digest" type="hidden" value="([0-9a-f]{64})"', html).group(1).decode()


def sign(client, answers=None, name="Ana Rivera", confirm_box=True, digest=None):
    """Open the sign page, then send it with these answers (topic -> "yes"/"no")."""
    page = client.get("/my-consent/sign")
    assert page.status_code == 200, page.status_code
    data = {f"answer_{t}": v for t, v in (answers or {t.value: "yes" for t in ALL_TOPICS}).items()}
    data.update(signature_name=name, text_digest=digest or shown_digest(page.data))
    if confirm_box:
        data["confirm"] = "y"
    return client.post("/my-consent/sign", data=data), page


def walk_to_signed(client, raw, answers=None):
    assert open_link(client, raw).status_code == 302
    assert client.get("/my-consent/confirm").status_code == 200
    assert confirm(client).status_code == 302
    response, page = sign(client, answers)
    assert response.status_code == 302, response.data[:2000]
    return page
