"""Patient identity comes back, and every reference a Task or ServiceRequest makes can be read."""

import uuid

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.core.permissions import Role
from portal.extensions import db
from tests import factories
from tests.api.helpers import (
    MRN_SYSTEM,
    assert_valid_fhir,
    bearer,
    created_id,
    make_client,
    post_bundle,
    referral_bundle,
    valid_npi,
)

PATIENT_SYSTEM = "https://fhir.referral-portal.example/sid/patient"


@pytest.fixture
def headers(client, client_a):
    return bearer(client, client_a)


@pytest.fixture
def submitted(client, headers, clinician_a):
    task_id = created_id(post_bundle(client, headers, referral_bundle(clinician_a.npi, mrn="MRN-77")))
    return client.get(f"/fhir/Task/{task_id}", headers=headers).get_json()


def _read(client, headers, reference: str):
    response = client.get(f"/fhir/{reference}", headers=headers)
    assert response.status_code == 200, (reference, response.get_json())
    resource = response.get_json()
    assert_valid_fhir(resource)
    assert response.headers["ETag"] == f'W/"{resource["meta"]["versionId"]}"'
    return resource


def test_every_reference_of_a_task_resolves(client, headers, submitted, clinician_a, org_a):
    task = submitted
    assert task["requester"]["reference"] == f"PractitionerRole/{clinician_a.public_id}"
    assert task["owner"]["reference"] == "Organization/practice"
    for field in ("for", "focus", "requester", "owner"):
        resource = _read(client, headers, task[field]["reference"])
        assert resource["resourceType"] == task[field]["reference"].split("/")[0]
    role = _read(client, headers, task["requester"]["reference"])
    practitioner = _read(client, headers, role["practitioner"]["reference"])
    organization = _read(client, headers, role["organization"]["reference"])
    assert practitioner["identifier"] == [{"system": "http://hl7.org/fhir/sid/us-npi", "value": clinician_a.npi}]
    assert organization["name"] == org_a.name and organization["id"] == str(org_a.public_id)
    sr = _read(client, headers, task["focus"]["reference"])
    for reference in [sr["subject"], sr["requester"], *sr["performer"]]:
        _read(client, headers, reference["reference"])


def test_the_patient_with_the_ehrs_mrn(client, headers, submitted):
    patient = _read(client, headers, submitted["for"]["reference"])
    assert patient["meta"]["profile"] == ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient|6.1.0"]
    assert patient["identifier"][0] == {"system": PATIENT_SYSTEM, "value": patient["id"]}
    mrn = patient["identifier"][1]
    assert (mrn["system"], mrn["value"], mrn["type"]["coding"][0]["code"]) == (MRN_SYSTEM, "MRN-77", "MR")
    assert patient["name"] == [{"use": "official", "family": "Rivera", "given": ["Ana"]}]
    assert patient["birthDate"] == "1980-04-02" and patient["gender"] == "female"
    event = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "api.read", AuditEvent.object_type == "Patient")
    )
    assert event.patient_id is not None and event.detail["resource"] == "Patient"


def test_search_patients_by_mrn_and_by_portal_id(client, headers, submitted, clinician_a):
    created_id(
        post_bundle(client, headers, referral_bundle(clinician_a.npi, family="Okafor", mrn="MRN-88", order="O-2"))
    )
    patient_id = submitted["for"]["reference"].split("/")[1]
    for query in (
        f"identifier={MRN_SYSTEM}|MRN-77",
        "identifier=MRN-77",
        f"identifier={PATIENT_SYSTEM}|{patient_id}",
        f"_id={patient_id}",
    ):
        bundle = client.get(f"/fhir/Patient?{query}", headers=headers).get_json()
        assert_valid_fhir(bundle)
        assert [e["resource"]["id"] for e in bundle["entry"]] == [patient_id], query
    assert client.get("/fhir/Patient", headers=headers).get_json()["total"] == 2
    assert client.get(f"/fhir/Patient?identifier={MRN_SYSTEM}|", headers=headers).get_json()["total"] == 2
    assert client.get("/fhir/Patient?identifier=urn:other|MRN-77", headers=headers).get_json()["total"] == 0


def test_another_organizations_mrn_never_shows_or_matches(client, headers, submitted, org_b):
    """Organization B sends the same person (another patient record) with its own MRN: A never sees it."""
    clinician_b = factories.make_user(Role.PARTNER, org_b, npi=valid_npi("222222222"))
    headers_b = bearer(client, make_client(org_b, name="Org B EHR"))
    b_task = created_id(post_bundle(client, headers_b, referral_bundle(clinician_b.npi, mrn="B-SECRET-1")))
    b_patient = client.get(f"/fhir/Task/{b_task}", headers=headers_b).get_json()["for"]["reference"]
    assert client.get(f"/fhir/{b_patient}", headers=headers).status_code == 404
    assert client.get("/fhir/Patient?identifier=B-SECRET-1", headers=headers).get_json()["total"] == 0
    assert client.get("/fhir/Patient", headers=headers_b).get_json()["total"] == 1
    # Even if staff linked both referrals to one patient record, A sees only its own identifiers.
    from portal.api.models import PatientIdentifier
    from portal.patients.models import Patient

    a_id = uuid.UUID(submitted["for"]["reference"].split("/")[1])
    a_patient = db.session.scalar(select(Patient).where(Patient.public_id == a_id))
    for row in db.session.scalars(select(PatientIdentifier)):
        row.patient_id = a_patient.id
    db.session.flush()
    patient = client.get(f"/fhir/Patient/{a_patient.public_id}", headers=headers).get_json()
    assert [i["value"] for i in patient["identifier"][1:]] == ["MRN-77"]
    assert client.get("/fhir/Patient?identifier=B-SECRET-1", headers=headers).get_json()["total"] == 0


def test_parties_of_another_organization_are_404(client, headers, submitted, org_b):
    other = factories.make_user(Role.PARTNER, org_b, npi=valid_npi("333333333"))
    factories.make_referral(org_b, other)
    for path in (
        f"Organization/{org_b.public_id}",
        f"Practitioner/{other.public_id}",
        f"PractitionerRole/{other.public_id}",
        "Organization/not-a-uuid",
    ):
        assert client.get(f"/fhir/{path}", headers=headers).status_code == 404, path


def test_a_colleague_who_never_referred_is_not_served(client, headers, submitted, org_a):
    colleague = factories.make_user(Role.PARTNER, org_a)
    assert client.get(f"/fhir/Practitioner/{colleague.public_id}", headers=headers).status_code == 404


def test_consent_names_organizations_by_reference(client, headers, org_a, clinician_a):
    from portal.consent.models import Category
    from tests.consent.helpers import add_consent

    referral = factories.make_referral(org_a, clinician_a)
    consent = add_consent(referral, categories=(Category.OUTCOME_SCORES,))
    resource = _read(client, headers, f"Consent/{consent.public_id}")
    assert resource["organization"][0]["reference"] == "Organization/practice"
    grantee = resource["provision"]["actor"][0]["reference"]["reference"]
    assert _read(client, headers, grantee)["id"] == str(org_a.public_id)
