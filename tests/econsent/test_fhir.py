"""The FHIR Consent of a consent the patient signed themselves: performer, method and source document."""

from sqlalchemy import select

from portal.consent.models import Consent
from tests import factories
from tests.api.helpers import assert_valid_fhir, bearer, make_client
from tests.econsent.helpers import make_patient, make_request, walk_to_signed

METHOD_EXTENSION = "https://fhir.referral-portal.example/StructureDefinition/consent-method"


def test_the_fhir_consent_carries_the_signed_copy_and_the_method(app, db, client, org_a):
    staff = factories.make_user("staff")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral)
    ehr = make_client(org_a)
    db.session.commit()
    walk_to_signed(app.test_client(), raw)
    consent = db.session.scalar(select(Consent))
    headers = bearer(client, ehr)

    resource = client.get(f"/fhir/Consent/{consent.public_id}", headers=headers).get_json()
    assert_valid_fhir(resource)
    assert resource["performer"] == [{"reference": f"Patient/{referral.patient.public_id}", "type": "Patient"}]
    (method,) = [e for e in resource["extension"] if e["url"] == METHOD_EXTENSION]
    assert method["valueCoding"]["code"] == "patient_esignature"
    attachment = resource["sourceAttachment"]
    assert attachment["contentType"] == "application/pdf" and "signed" in attachment["title"]
    # Described, never handed out: the copy holds the patient's own link to withdraw.
    assert "data" not in attachment and "url" not in attachment
    assert raw not in str(resource) and "/my-consent/" not in str(resource)
    bundle = client.get("/fhir/Consent", headers=headers).get_json()
    assert_valid_fhir(bundle)
    assert [e["resource"]["id"] for e in bundle["entry"]] == [str(consent.public_id)]


def test_a_consent_recorded_by_staff_names_the_practice_and_no_document(app, db, client, org_a):
    from portal.consent.models import Category
    from tests.consent.helpers import add_consent

    referral = factories.make_referral(org_a)
    consent = add_consent(referral, categories=(Category.OUTCOME_SCORES,))
    ehr = make_client(org_a)
    db.session.commit()
    resource = client.get(f"/fhir/Consent/{consent.public_id}", headers=bearer(client, ehr)).get_json()
    assert_valid_fhir(resource)
    assert resource["performer"][0]["reference"] == "Organization/practice"
    assert "sourceAttachment" not in resource
    (method,) = [e for e in resource["extension"] if e["url"] == METHOD_EXTENSION]
    assert method["valueCoding"]["code"] == consent.method.value
