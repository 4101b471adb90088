"""The FHIR API: submit a referral Bundle, follow its Task, read consented data; every resource validates as R4."""

import base64
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.consent.models import Category, ConsentStatus
from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.extensions import db
from portal.outcomes.models import Instrument, OutcomeScore, Phase
from portal.progress.models import UpdateState
from portal.referrals.lifecycle import Status
from portal.referrals.models import Referral
from portal.referrals.services import change_status
from tests import factories
from tests.api.helpers import assert_valid_fhir, bearer, created_id, post_bundle, referral_bundle, valid_npi
from tests.clock import practice_today
from tests.consent.helpers import add_consent, add_update


@pytest.fixture
def headers(client, client_a):
    return bearer(client, client_a)


def test_metadata_is_a_valid_capability_statement_and_tells_the_truth(client, app):
    response = client.get("/fhir/metadata")
    assert response.status_code == 200 and response.mimetype == "application/fhir+json"
    statement = response.get_json()
    assert_valid_fhir(statement)
    assert statement["fhirVersion"] == "4.0.1"
    served = {rule.rule for rule in app.url_map.iter_rules()}
    for resource in statement["rest"][0]["resource"]:
        codes = {i["code"] for i in resource["interaction"]}
        assert ("read" in codes) == (f"/fhir/{resource['type']}/<id>" in served)
        assert ("search-type" in codes) == (f"/fhir/{resource['type']}" in served)
    fhir_routes = {r for r in served if r.startswith("/fhir/") and r.count("/") >= 2}
    declared = {f"/fhir/{r['type']}" for r in statement["rest"][0]["resource"]}
    resource_routes = {r.split("/<")[0] for r in fhir_routes if r.split("/")[2][:1].isupper()}
    assert resource_routes == declared
    rest = statement["rest"][0]
    oauth = rest["security"]["extension"][0]
    assert oauth["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert oauth["extension"] == [{"url": "token", "valueUri": "http://127.0.0.1:5000/fhir/auth/token"}]
    profiles = {r["type"]: r.get("supportedProfile", []) for r in rest["resource"]}
    assert profiles["Patient"] == ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient|6.1.0"]
    assert profiles["Task"] == [] and profiles["Practitioner"] == []  # declared only where they conform
    assert statement["instantiates"] == [
        "http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4"
    ]
    subscription = next(r for r in rest["resource"] if r["type"] == "Subscription")
    assert subscription["extension"][0]["valueCanonical"].endswith("/SubscriptionTopic/task-status")


def test_submit_referral_bundle(client, headers, clinician_a, outbox):
    pdf = factories.PDF_BYTES
    response = post_bundle(
        client, headers, referral_bundle(clinician_a.npi, codes=("M54.50", "m51.26"), attachments=[("mri.pdf", pdf)])
    )
    assert response.status_code == 200, response.get_json()
    bundle = response.get_json()
    assert_valid_fhir(bundle)
    # One response entry per entry sent, in order: Patient, Practitioner, ServiceRequest, DocumentReference.
    statuses = [e["response"]["status"] for e in bundle["entry"]]
    assert statuses == ["201 Created", "200 OK", "201 Created", "201 Created"]
    patient, practitioner, request, document = bundle["entry"]
    assert patient["response"]["location"].startswith("Patient/")
    assert practitioner["response"]["location"] == f"Practitioner/{clinician_a.public_id}"
    sr = request["resource"]
    assert request["response"]["location"] == f"ServiceRequest/{sr['id']}/_history/{sr['meta']['versionId']}"
    assert request["response"]["etag"] == f'W/"{sr["meta"]["versionId"]}"'
    assert "location" not in document["response"]
    referral = db.session.scalar(select(Referral).where(Referral.public_id == uuid.UUID(sr["id"])))
    assert referral.clinician_id == clinician_a.id and referral.submitted_by_id == clinician_a.id
    assert referral.icd10_codes == ["M54.50", "M51.26"]
    assert referral.reason == "Low back pain for six weeks"
    assert len(referral.attachments) == 1 and referral.attachments[0].uploaded_by_id == clinician_a.id
    task = client.get(f"/fhir/Task/{sr['id']}", headers=headers)
    assert task.status_code == 200 and task.get_json()["status"] == "requested"
    assert task.headers["ETag"] == f'W/"{task.get_json()["meta"]["versionId"]}"'
    # Same services as the web form: audit with the client as actor, thank-you mail to the clinician.
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "referral.submitted"))
    assert event.actor_id is None and event.detail["client_name"] == "Test EHR"
    assert [m.template for m in outbox(clinician_a.email)] == ["referral_welcome"]


def test_prefer_return_minimal_leaves_the_resources_out(client, headers, clinician_a):
    response = client.post(
        "/fhir",
        json=referral_bundle(clinician_a.npi),
        headers={**headers, "Content-Type": "application/fhir+json", "Prefer": "return=minimal"},
    )
    bundle = response.get_json()
    assert_valid_fhir(bundle)
    assert all("resource" not in e for e in bundle["entry"])
    assert bundle["entry"][2]["response"]["location"].startswith("ServiceRequest/")


def test_duplicate_detection_as_in_the_web_form(client, headers, clinician_a):
    post_bundle(client, headers, referral_bundle(clinician_a.npi, order=None))
    response = post_bundle(client, headers, referral_bundle(clinician_a.npi, order=None))
    referral = db.session.scalar(select(Referral).where(Referral.public_id == created_id(response)))
    assert referral.needs_duplicate_review


@pytest.mark.parametrize(
    "change, expression",
    [
        ({"codes": ("NOTACODE",)}, "ServiceRequest.reasonCode.coding"),
        ({"birth_date": (practice_today() + timedelta(days=3)).isoformat()}, "Patient.birthDate"),
        ({"phone": "12"}, "Patient.telecom"),
        ({"reason": "", "displays": False}, "ServiceRequest.reasonCode.text"),
        ({"state": "ZZ"}, "Patient.address.state"),
    ],
)
def test_invalid_referral_is_422_with_the_form_rules(client, headers, clinician_a, change, expression):
    response = post_bundle(client, headers, referral_bundle(clinician_a.npi, **change))
    assert response.status_code == 422
    outcome = response.get_json()
    assert_valid_fhir(outcome)
    assert expression in [e for i in outcome["issue"] for e in i.get("expression", [])]
    assert db.session.scalar(select(func.count()).select_from(Referral)) == 0


def test_unknown_or_invalid_npi(client, headers, clinician_a):
    response = post_bundle(client, headers, referral_bundle(valid_npi("987654321")))
    assert response.status_code == 422 and "NPI" in response.get_json()["issue"][0]["diagnostics"]
    response = post_bundle(client, headers, referral_bundle("1234567890"))
    assert response.status_code == 422


def test_clinician_of_another_organization_is_not_usable(client, headers, org_b):
    other = factories.make_user(Role.PARTNER, org_b, npi=valid_npi("111111111"))
    assert post_bundle(client, headers, referral_bundle(other.npi)).status_code == 422


def test_bad_attachment_refused(client, headers, clinician_a):
    response = post_bundle(client, headers, referral_bundle(clinician_a.npi, attachments=[("x.exe", b"MZ\x90\x00")]))
    assert response.status_code == 422
    assert response.get_json()["issue"][0]["expression"] == ["DocumentReference.content.attachment"]


@pytest.mark.parametrize(
    "body, status",
    [
        (b"not json", 400),
        (b"{}", 400),
        (b'{"resourceType": "Bundle", "type": "batch"}', 400),
        (b'{"resourceType": "Bundle", "type": "transaction", "entry": []}', 400),
        (b'{"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {"resourceType": "Claim"}}]}', 400),
    ],
)
def test_malformed_bundles(client, headers, body, status):
    response = client.post("/fhir", data=body, headers={**headers, "Content-Type": "application/fhir+json"})
    assert response.status_code == status
    assert_valid_fhir(response.get_json())


def test_wrong_content_type(client, headers):
    response = client.post("/fhir", data="x", headers={**headers, "Content-Type": "text/plain"})
    assert response.status_code == 415


def test_no_token_is_401_operation_outcome(client):
    response = client.get("/fhir/Task")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_valid_fhir(response.get_json())


def test_unknown_route_and_method_are_operation_outcomes(client, headers):
    for response in (client.get("/fhir/Location/1", headers=headers), client.delete("/fhir/Task", headers=headers)):
        assert response.status_code in (404, 405)
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_follow_a_referral_to_discharge(client, headers, clinician_a, org_a):
    task = {"id": str(created_id(post_bundle(client, headers, referral_bundle(clinician_a.npi))))}
    referral = db.session.scalar(select(Referral).where(Referral.public_id == uuid.UUID(task["id"])))
    staff = factories.make_user(Role.STAFF)
    from portal.core.time import now_utc
    from portal.referrals.models import AppointmentMode

    expected = {
        Status.ACCEPTED: ("accepted", "3.0"),
        Status.SCHEDULED: ("in-progress", None),
        Status.IN_CARE: ("in-progress", None),
        Status.DISCHARGED: ("completed", "7.0"),
    }
    for target, (fhir_status, bser) in expected.items():
        change_status(staff, referral, target, first_visit_at=now_utc(), mode=AppointmentMode.IN_CLINIC)
        db.session.flush()
        read = client.get(f"/fhir/Task/{task['id']}", headers=headers).get_json()
        assert_valid_fhir(read)
        assert read["status"] == fhir_status
        codes = {c["code"] for c in read["businessStatus"]["coding"]}
        assert target.value in codes and (bser is None or bser in codes)
    service_request = client.get(f"/fhir/ServiceRequest/{task['id']}", headers=headers).get_json()
    assert_valid_fhir(service_request)
    assert service_request["status"] == "completed" and service_request["intent"] == "order"
    assert service_request["reasonCode"][0]["coding"][0]["code"] == "M54.50"
    assert service_request["identifier"][1]["value"] == "ORDER-1"  # the EHR's order identifier, kept


def test_search_tasks_by_last_updated_with_paging(client, headers, org_a, clinician_a):
    for _ in range(5):
        factories.make_referral(org_a, clinician_a)
    factories.make_referral(factories.make_organization())  # another organization's: never listed
    bundle = client.get("/fhir/Task?_count=2", headers=headers).get_json()
    assert_valid_fhir(bundle)
    assert bundle["total"] == 5 and len(bundle["entry"]) == 2
    seen = [e["resource"]["id"] for e in bundle["entry"]]
    while next_link := next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None):
        bundle = client.get(next_link.split("127.0.0.1:5000", 1)[1], headers=headers).get_json()
        seen += [e["resource"]["id"] for e in bundle["entry"]]
    assert len(seen) == len(set(seen)) == 5
    utc_today = now_utc().date()  # a date without a time zone is a UTC day in the API (documented)
    tomorrow = (utc_today + timedelta(days=1)).isoformat()
    assert client.get(f"/fhir/Task?_lastUpdated=gt{tomorrow}", headers=headers).get_json()["total"] == 0
    assert client.get(f"/fhir/Task?_lastUpdated=lt{tomorrow}", headers=headers).get_json()["total"] == 5
    since = (utc_today - timedelta(days=1)).isoformat() + "T00:00:00Z"
    assert (
        client.get(f"/fhir/Task?_lastUpdated=ge{since}&_lastUpdated=le{tomorrow}", headers=headers).get_json()["total"]
        == 5
    )


@pytest.mark.parametrize(
    "query",
    [
        "_count=-1",
        "_count=1000",
        "_count=abc",
        "_lastUpdated=yesterday",
        "_lastUpdated=gt2026-01-01T10:00",
        "_lastUpdated=ne2026-01-01",
        "_cursor=zzz",
        "_count=%C2%B3",
        "_lastUpdated=%D9%A2%D9%A0%D9%A2%D9%A6",
    ],
)  # "³", Arabic-Indic digits
def test_bad_search_parameters_are_400(client, headers, query):
    response = client.get(f"/fhir/Task?{query}", headers=headers)
    assert response.status_code == 400
    assert_valid_fhir(response.get_json())


def _score(referral, staff, value=40):
    instrument = db.session.scalar(select(Instrument).where(Instrument.code == "NPRS"))
    score = OutcomeScore(
        referral_id=referral.id,
        instrument_id=instrument.id,
        phase=Phase.INTAKE,
        measured_on=date(2026, 1, 5),
        score=value % 11,
        recorded_by_id=staff.id,
    )
    db.session.add(score)
    db.session.flush()
    return score


def test_consented_outcome_scores_only(client, headers, org_a, clinician_a):
    staff = factories.make_user(Role.STAFF)
    consented = factories.make_referral(org_a, clinician_a)
    silent = factories.make_referral(org_a, clinician_a, patient=factories.make_patient("Other"))
    shown, hidden = _score(consented, staff), _score(silent, staff)
    consent = add_consent(consented, categories=(Category.OUTCOME_SCORES,))
    add_consent(silent, categories=(Category.PROGRESS_NOTES,))  # not scores
    bundle = client.get("/fhir/Observation", headers=headers).get_json()
    assert_valid_fhir(bundle)
    assert [e["resource"]["id"] for e in bundle["entry"]] == [str(shown.public_id)]
    observation = client.get(f"/fhir/Observation/{shown.public_id}", headers=headers).get_json()
    assert_valid_fhir(observation)
    assert {"system": "http://loinc.org", "code": "72514-3"}.items() <= observation["code"]["coding"][0].items()
    assert observation["meta"]["profile"] == [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-screening-assessment|6.1.0"
    ]
    assert client.get(f"/fhir/Observation/{hidden.public_id}", headers=headers).status_code == 404
    # Revocation hides it at once.
    add_consent(
        consented,
        categories=(Category.OUTCOME_SCORES,),
        key=consent.consent_key,
        version=2,
        status=ConsentStatus.REVOKED,
    )
    assert client.get(f"/fhir/Observation/{shown.public_id}", headers=headers).status_code == 404


def test_consent_naming_one_clinician_does_not_cover_the_client(client, headers, org_a, clinician_a):
    referral = factories.make_referral(org_a, clinician_a)
    score = _score(referral, factories.make_user(Role.STAFF))
    add_consent(referral, categories=(Category.OUTCOME_SCORES,), clinician=clinician_a)
    assert client.get(f"/fhir/Observation/{score.public_id}", headers=headers).status_code == 404


def test_released_progress_updates_as_document_references(client, headers, org_a, clinician_a):
    referral = factories.make_referral(org_a, clinician_a)
    staff = factories.make_user(Role.STAFF)
    released = add_update(referral, staff, body="Walking 2 km without pain")
    draft = add_update(referral, staff, state=UpdateState.PENDING)
    add_consent(referral, categories=(Category.PROGRESS_NOTES,))
    bundle = client.get("/fhir/DocumentReference", headers=headers).get_json()
    assert_valid_fhir(bundle)
    assert [e["resource"]["id"] for e in bundle["entry"]] == [str(released.public_id)]
    doc = client.get(f"/fhir/DocumentReference/{released.public_id}", headers=headers).get_json()
    assert_valid_fhir(doc)
    assert base64.b64decode(doc["content"][0]["attachment"]["data"]).decode() == "Walking 2 km without pain"
    assert doc["type"]["coding"][0]["code"] == "11506-3"
    assert doc["category"][0]["coding"][0]["code"] == "clinical-note"
    assert doc["author"] == [
        {"reference": "Organization/practice", "type": "Organization", "display": doc["custodian"]["display"]}
    ]
    assert client.get(f"/fhir/DocumentReference/{draft.public_id}", headers=headers).status_code == 404


def test_consents_in_effect_for_the_organization(client, headers, org_a, clinician_a):
    referral = factories.make_referral(org_a, clinician_a)
    current = add_consent(
        referral,
        categories=(Category.OUTCOME_SCORES, Category.PROGRESS_NOTES),
        end=practice_today() + timedelta(days=90),
    )
    expired = add_consent(referral, start=date(2020, 1, 1), end=date(2020, 12, 31))
    bundle = client.get("/fhir/Consent", headers=headers).get_json()
    assert_valid_fhir(bundle)
    assert [e["resource"]["id"] for e in bundle["entry"]] == [str(current.public_id)]
    consent = client.get(f"/fhir/Consent/{current.public_id}", headers=headers).get_json()
    assert_valid_fhir(consent)
    assert consent["status"] == "active" and len(consent["provision"]["class"]) == 2
    assert client.get(f"/fhir/Consent/{expired.public_id}", headers=headers).status_code == 404


def test_disclosures_appear_in_the_accounting(client, headers, org_a, clinician_a, login_as):
    referral = factories.make_referral(org_a, clinician_a)
    staff = factories.make_user(Role.STAFF)
    score = _score(referral, staff)
    add_consent(referral, categories=(Category.OUTCOME_SCORES,))
    client.get(f"/fhir/Observation/{score.public_id}", headers=headers)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "phi.disclosed"))
    assert event.actor_id is None and event.detail["client_name"] == "Test EHR"
    assert event.patient_id == referral.patient.public_id
    login_as("staff")
    page = client.get(f"/staff/patients/{referral.patient.public_id}/disclosures")
    assert page.status_code == 200 and b"API client Test EHR" in page.data
    csv = client.get(f"/staff/patients/{referral.patient.public_id}/disclosures?format=csv")
    assert b"API client Test EHR" in csv.data


def test_every_read_is_audited_with_the_client(client, headers, org_a, clinician_a, client_a):
    referral = factories.make_referral(org_a, clinician_a)
    client.get(f"/fhir/Task/{referral.public_id}", headers=headers)
    client.get(f"/fhir/ServiceRequest/{referral.public_id}", headers=headers)
    client.get("/fhir/Task", headers=headers)
    events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "api.read")).all()
    assert {e.detail["resource"] for e in events} == {"Task", "ServiceRequest"}
    assert all(e.detail["client"] == client_a.client_id and e.actor_id is None for e in events)


def test_no_phi_in_audit_or_outcomes(client, headers, clinician_a):
    response = post_bundle(client, headers, referral_bundle(clinician_a.npi, family="Zebulon", phone="12"))
    assert b"Zebulon" not in response.data
    assert response.status_code == 422
