"""Intake takes what EHRs send: the parties, Conditions, Coverage, questionnaires, SNOMED beside ICD-10-CM, a
PractitionerRole requester, no phone; it keeps their identifiers, codes and authoredOn, and says what it ignored."""

import copy

import pytest
from sqlalchemy import select

from portal.api.models import PatientIdentifier, ReferralDetail
from portal.core.permissions import Role
from portal.extensions import db
from portal.referrals.models import Referral
from tests import factories
from tests.api.helpers import (
    MRN_SYSTEM,
    ORDER_SYSTEM,
    assert_valid_fhir,
    bearer,
    created_id,
    post_bundle,
    referral_bundle,
)

SNOMED = "http://snomed.info/sct"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
NPI = "http://hl7.org/fhir/sid/us-npi"


@pytest.fixture
def headers(client, client_a):
    return bearer(client, client_a)


def epic_like_bundle(npi: str) -> dict:
    """A Bundle as a hospital EHR builds it: PractitionerRole requester, the EHR's Organization, a Condition named
    by reasonReference, Coverage with its payer Organization, a QuestionnaireResponse, SNOMED codes for the service
    and beside the ICD-10-CM reason, supportingInfo, an Encounter nobody asked for, and no patient phone."""
    patient = "urn:uuid:11111111-1111-4111-8111-111111111111"
    practitioner = "urn:uuid:22222222-2222-4222-8222-222222222222"
    role = "urn:uuid:33333333-3333-4333-8333-333333333333"
    org = "urn:uuid:44444444-4444-4444-8444-444444444444"
    condition = "urn:uuid:55555555-5555-4555-8555-555555555555"
    payer = "urn:uuid:66666666-6666-4666-8666-666666666666"
    coverage = "urn:uuid:77777777-7777-4777-8777-777777777777"
    questionnaire = "urn:uuid:88888888-8888-4888-8888-888888888888"
    request = "urn:uuid:99999999-9999-4999-8999-999999999999"
    encounter = "urn:uuid:aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"

    def post(url, resource):
        return {"fullUrl": url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}

    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            post(
                patient,
                {
                    "resourceType": "Patient",
                    "identifier": [
                        {
                            "use": "usual",
                            "type": {
                                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
                            },
                            "system": MRN_SYSTEM,
                            "value": "E12345",
                        }
                    ],
                    "name": [{"use": "official", "family": "Okafor", "given": ["Chidi", "N."]}],
                    "gender": "male",
                    "birthDate": "1975-09-30",
                    "address": [{"use": "home", "line": ["4 Lake Rd"], "city": "Verona", "state": "wi"}],
                },
            ),
            post(org, {"resourceType": "Organization", "name": "Lakeside EHR site", "active": True}),
            post(
                practitioner,
                {
                    "resourceType": "Practitioner",
                    "identifier": [{"system": NPI, "value": npi}],
                    "name": [{"family": "A", "given": ["Alice"]}],
                },
            ),
            post(
                role,
                {
                    "resourceType": "PractitionerRole",
                    "practitioner": {"reference": practitioner},
                    "organization": {"reference": org},
                },
            ),
            post(
                condition,
                {
                    "resourceType": "Condition",
                    "clinicalStatus": {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
                        ]
                    },
                    "code": {
                        "coding": [
                            {
                                "system": ICD,
                                "code": "M17.11",
                                "display": "Unilateral primary osteoarthritis, right knee",
                            },
                            {"system": SNOMED, "code": "239873007", "display": "Osteoarthritis of knee"},
                        ],
                        "text": "Right knee OA",
                    },
                    "subject": {"reference": patient},
                    "onsetDateTime": "2024-05-01",
                },
            ),
            post(payer, {"resourceType": "Organization", "name": "Badger Health Plan"}),
            post(
                coverage,
                {
                    "resourceType": "Coverage",
                    "status": "active",
                    "beneficiary": {"reference": patient},
                    "subscriberId": "BHP-889900",
                    "payor": [{"reference": payer}],
                },
            ),
            post(
                questionnaire,
                {
                    "resourceType": "QuestionnaireResponse",
                    "status": "completed",
                    "questionnaire": "http://loinc.org/q/97908-8",
                    "authored": "2026-10-30",
                    "item": [
                        {"linkId": "1", "text": "Pain now (0-10)", "answer": [{"valueInteger": 6}]},
                        {
                            "linkId": "2",
                            "text": "Walking",
                            "item": [
                                {"linkId": "2.1", "text": "Blocks", "answer": [{"valueCoding": {"display": "Two"}}]}
                            ],
                        },
                    ],
                },
            ),
            post(encounter, {"resourceType": "Encounter", "status": "finished"}),
            {
                "fullUrl": request,
                "resource": {
                    "resourceType": "ServiceRequest",
                    "identifier": [
                        {
                            "type": {
                                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}]
                            },
                            "system": ORDER_SYSTEM,
                            "value": "EPIC-ORD-1",
                        }
                    ],
                    "status": "active",
                    "intent": "order",
                    "category": [{"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}],
                    "code": {
                        "coding": [{"system": SNOMED, "code": "91251008", "display": "Physical therapy procedure"}]
                    },
                    "priority": "asap",
                    "subject": {"reference": patient},
                    "requester": {"reference": role},
                    "authoredOn": "2026-11-02T09:30:00-06:00",
                    "reasonReference": [{"reference": condition}],
                    "supportingInfo": [{"reference": questionnaire}, {"reference": coverage}],
                    "insurance": [{"reference": coverage}],
                    "note": [{"text": "Post-injection, ready for PT"}],
                },
                "request": {
                    "method": "POST",
                    "url": "ServiceRequest",
                    "ifNoneExist": f"identifier={ORDER_SYSTEM}|EPIC-ORD-1",
                },
            },
        ],
    }


def test_a_full_ehr_bundle_is_taken_and_kept(client, headers, clinician_a, login_as):
    response = post_bundle(client, headers, epic_like_bundle(clinician_a.npi))
    referral_id = created_id(response)
    bundle = response.get_json()
    assert_valid_fhir(bundle)
    answered = [(e["response"]["status"], e["response"].get("location", "").split("/")[0]) for e in bundle["entry"]]
    assert answered == [
        ("201 Created", "Patient"),
        ("200 OK", ""),  # the EHR's Organization: matched, not created
        ("200 OK", "Practitioner"),
        ("200 OK", "PractitionerRole"),
        ("201 Created", ""),  # Condition, kept
        ("200 OK", ""),  # the payer's Organization
        ("201 Created", ""),  # Coverage, kept
        ("201 Created", ""),  # QuestionnaireResponse, kept
        ("200 OK", ""),  # Encounter: ignored
        ("201 Created", "ServiceRequest"),
    ]
    assert bundle["entry"][3]["response"]["location"] == f"PractitionerRole/{clinician_a.public_id}"
    encounter = bundle["entry"][8]["response"]["outcome"]["issue"][0]
    assert encounter["severity"] == "warning" and "Encounter" in encounter["diagnostics"]

    referral = db.session.scalar(select(Referral).where(Referral.public_id == referral_id))
    assert referral.clinician_id == clinician_a.id
    assert referral.icd10_codes == ["M17.11"]  # from the Condition the ServiceRequest names
    assert referral.reason == "Right knee OA"
    assert referral.urgency.value == "urgent"
    patient = referral.patient
    assert patient.phone == "" and patient.insurance_member_id == "BHP-889900"
    assert patient.us_state == "WI"
    detail = db.session.scalar(select(ReferralDetail).where(ReferralDetail.referral_id == referral.id)).content
    assert detail["authored_on"] == "2026-11-02T09:30:00-06:00"
    assert detail["requester_type"] == "PractitionerRole"
    assert detail["service_codings"] == [
        {"system": SNOMED, "code": "91251008", "display": "Physical therapy procedure"}
    ]
    assert detail["coverage"][0]["payer"] == "Badger Health Plan"
    assert detail["questionnaire_responses"][0]["answers"] == [
        {"link_id": "1", "text": "Pain now (0-10)", "answer": ["6"]},
        {"link_id": "2.1", "text": "Blocks", "answer": ["Two"]},
    ]
    assert detail["ignored"] == ["Encounter"]
    mrn = db.session.scalar(select(PatientIdentifier).where(PatientIdentifier.patient_id == patient.id))
    assert (mrn.system, mrn.value, mrn.type_code) == (MRN_SYSTEM, "E12345", "MR")
    assert b"E12345" not in mrn.value_ct  # encrypted

    # What comes back keeps the EHR's codes, order identifier and authoredOn.
    sr = client.get(f"/fhir/ServiceRequest/{referral_id}", headers=headers).get_json()
    assert_valid_fhir(sr)
    assert sr["authoredOn"] == "2026-11-02T09:30:00-06:00"
    assert {"system": SNOMED, "code": "91251008", "display": "Physical therapy procedure"} in sr["code"]["coding"]
    assert {"system": ORDER_SYSTEM, "value": "EPIC-ORD-1"}.items() <= sr["identifier"][1].items()
    assert sr["meta"]["profile"] == ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-servicerequest|6.1.0"]

    # Staff see it on the referral page.
    login_as("staff")
    page = client.get(f"/staff/referrals/{referral_id}")
    assert page.status_code == 200
    for text in (b"Sent by the partner", b"E12345", b"EPIC-ORD-1", b"Badger Health Plan", b"Blocks", b"Encounter"):
        assert text in page.data, text


def test_snomed_beside_icd10_is_kept_and_echoed(client, headers, clinician_a):
    bundle = referral_bundle(clinician_a.npi)
    bundle["entry"][2]["resource"]["reasonCode"][0]["coding"].append(
        {"system": SNOMED, "code": "279039007", "display": "Low back pain"}
    )
    referral_id = created_id(post_bundle(client, headers, bundle))
    sr = client.get(f"/fhir/ServiceRequest/{referral_id}", headers=headers).get_json()
    assert_valid_fhir(sr)
    systems = [c["system"] for c in sr["reasonCode"][0]["coding"]]
    assert systems == [ICD, SNOMED]


def test_icd10_is_required_somewhere(client, headers, clinician_a):
    bundle = referral_bundle(clinician_a.npi)
    bundle["entry"][2]["resource"]["reasonCode"][0]["coding"] = [{"system": SNOMED, "code": "279039007"}]
    response = post_bundle(client, headers, bundle)
    assert response.status_code == 422
    assert response.get_json()["issue"][0]["expression"] == ["ServiceRequest.reasonCode.coding"]


def test_the_reason_text_may_come_from_the_codes(client, headers, clinician_a):
    referral_id = created_id(post_bundle(client, headers, referral_bundle(clinician_a.npi, reason="")))
    assert db.session.scalar(select(Referral.reason_ct).where(Referral.public_id == referral_id))
    referral = db.session.scalar(select(Referral).where(Referral.public_id == referral_id))
    assert referral.reason == "Dx"


def test_no_phone_is_fine(client, headers, clinician_a):
    referral_id = created_id(post_bundle(client, headers, referral_bundle(clinician_a.npi, phone=None)))
    patient = db.session.scalar(select(Referral).where(Referral.public_id == referral_id)).patient
    assert not patient.phone


def test_requester_as_a_logical_reference(client, headers, clinician_a):
    bundle = referral_bundle(clinician_a.npi)
    del bundle["entry"][1]
    bundle["entry"][1]["resource"]["requester"] = {
        "type": "PractitionerRole",
        "identifier": {"system": NPI, "value": clinician_a.npi},
    }
    assert created_id(post_bundle(client, headers, bundle))


def test_an_organization_is_not_a_requester(client, headers, clinician_a):
    bundle = referral_bundle(clinician_a.npi)
    bundle["entry"][1]["resource"] = {"resourceType": "Organization", "name": "Clinic"}
    response = post_bundle(client, headers, bundle)
    assert response.status_code == 422
    assert response.get_json()["issue"][0]["expression"] == ["ServiceRequest.requester"]


def test_a_url_attachment_is_ignored_with_a_warning(client, headers, clinician_a):
    bundle = referral_bundle(clinician_a.npi)
    bundle["entry"].append(
        {
            "request": {"method": "POST", "url": "DocumentReference"},
            "resource": {
                "resourceType": "DocumentReference",
                "status": "current",
                "content": [{"attachment": {"url": "https://ehr.example/Binary/1", "contentType": "application/pdf"}}],
            },
        }
    )
    response = post_bundle(client, headers, bundle)
    assert created_id(response)
    warning = response.get_json()["entry"][3]["response"]["outcome"]["issue"][0]
    assert warning["severity"] == "warning"


def test_the_web_form_still_requires_a_phone(client, login_as, clinician_a):
    """The API's relaxed rules do not leak into the web form."""
    from portal.referrals.forms import ReferralForm

    assert any(v.__class__.__name__ == "DataRequired" for v in ReferralForm.phone.kwargs["validators"])


def test_an_unknown_clinician_of_another_organization_is_422(client, headers, org_b):
    other = factories.make_user(Role.PARTNER, org_b, npi="1234567893")
    bundle = epic_like_bundle(other.npi)
    assert post_bundle(client, headers, copy.deepcopy(bundle)).status_code == 422
