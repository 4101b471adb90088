"""Bad input is refused early and in kind (400, 406, 415), never a 500; nothing is stored."""

import json

import pytest
from sqlalchemy import func, select

from portal.api.fhir.body import MAX_CONTAINERS, MAX_DEPTH, too_complex
from portal.extensions import db
from portal.referrals.models import Referral
from tests.api.helpers import assert_valid_fhir, bearer, post_bundle, referral_bundle


@pytest.fixture
def headers(client, client_a):
    return bearer(client, client_a)


def _post_raw(client, headers, body: bytes):
    return client.post("/fhir", data=body, headers={**headers, "Content-Type": "application/fhir+json"})


def _referrals() -> int:
    return db.session.scalar(select(func.count()).select_from(Referral))


def test_deep_nesting_is_a_400_not_a_recursion_error(client, headers):
    body = b"[" * 1000 + b"]" * 1000  # 2 KB
    response = _post_raw(client, headers, body)
    assert response.status_code == 400
    outcome = response.get_json()
    assert_valid_fhir(outcome)
    assert outcome["issue"][0]["code"] == "too-costly"
    # Deep inside a plausible Bundle too.
    nested = {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": {"x": []}}]}
    raw = json.dumps(nested).replace("[]", "[" * 200 + "]" * 200).encode()
    assert _post_raw(client, headers, raw).status_code == 400


def test_too_many_elements_is_a_400(client, headers):
    body = json.dumps(
        {"resourceType": "Bundle", "type": "transaction", "entry": [{} for _ in range(MAX_CONTAINERS + 1)]}
    )
    response = _post_raw(client, headers, body.encode())
    assert response.status_code == 400 and response.get_json()["issue"][0]["code"] == "too-costly"


def test_the_scan_ignores_brackets_inside_strings():
    assert too_complex(json.dumps({"text": "[" * 5000, "data": "{" * 5000}).encode()) is None
    assert too_complex(json.dumps({"a": [[[]]]}).encode()) is None
    assert too_complex(("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)).encode()) is not None
    assert too_complex(b'"\\"[[[[" ' + b"[]") is None  # an escaped quote does not end the string


@pytest.mark.parametrize(
    "change, expression",
    [
        (lambda sr: sr.update(status=42), "ServiceRequest.status"),
        (lambda sr: sr.update(status="bogus"), "ServiceRequest.status"),
        (lambda sr: sr.pop("status"), "ServiceRequest.status"),
        (lambda sr: sr.update(intent=["order"]), "ServiceRequest.intent"),
        (lambda sr: sr.update(subject="Patient/1"), "ServiceRequest.subject"),
        (lambda sr: sr.update(reasonCode={"text": "x"}), "ServiceRequest.reasonCode"),
        (lambda sr: sr.update(priority=1), "ServiceRequest.priority"),
        (lambda sr: sr.update(authoredOn="yesterday"), "ServiceRequest.authoredOn"),
        (lambda sr: sr.update(identifier=[{"system": 5, "value": "x"}]), "ServiceRequest.identifier.system"),
    ],
)
def test_wrong_json_types_and_codes_are_400_naming_the_element(client, headers, clinician_a, change, expression):
    bundle = referral_bundle(clinician_a.npi)
    change(bundle["entry"][2]["resource"])
    response = post_bundle(client, headers, bundle)
    assert response.status_code == 400, response.get_json()
    outcome = response.get_json()
    assert_valid_fhir(outcome)
    assert [expression] == outcome["issue"][0]["expression"]
    assert _referrals() == 0


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.update(birthDate=19800402),
        lambda p: p.update(birthDate="02/04/1980"),
        lambda p: p.update(gender="f"),
        lambda p: p.update(name="Ana Rivera"),
        lambda p: p.update(name=[{"given": "Ana"}]),
    ],
)
def test_wrong_patient_types_are_400(client, headers, clinician_a, change):
    bundle = referral_bundle(clinician_a.npi)
    change(bundle["entry"][0]["resource"])
    response = post_bundle(client, headers, bundle)
    assert response.status_code == 400, response.get_json()
    assert b"Rivera" not in response.data and b"1980" not in response.data  # names paths, never values


def test_a_draft_order_is_422(client, headers, clinician_a):
    bundle = referral_bundle(clinician_a.npi)
    bundle["entry"][2]["resource"]["status"] = "draft"
    assert post_bundle(client, headers, bundle).status_code == 422


@pytest.mark.parametrize("accept", ["application/fhir+xml", "application/xml", "text/html", "text/turtle"])
def test_xml_and_other_formats_are_406(client, headers, accept):
    for path in ("/fhir/Task", "/fhir/metadata", "/fhir/Task/00000000-0000-4000-8000-000000000000"):
        response = client.get(path, headers={**headers, "Accept": accept})
        assert response.status_code == 406, (path, accept)
        assert response.mimetype == "application/fhir+json"
        assert_valid_fhir(response.get_json())


@pytest.mark.parametrize(
    "accept", ["application/fhir+json", "application/json", "*/*", "application/fhir+xml;q=0.9, */*;q=0.1", None]
)
def test_json_is_served_to_whoever_accepts_it(client, headers, accept):
    response = client.get("/fhir/Task", headers={**headers, **({"Accept": accept} if accept else {})})
    assert response.status_code == 200 and response.mimetype == "application/fhir+json"


def test_format_parameter_on_reads_too(client, headers):
    assert client.get("/fhir/metadata?_format=xml").status_code == 406
    assert client.get("/fhir/metadata?_format=json").status_code == 200
    response = client.get(
        "/fhir/Task/00000000-0000-4000-8000-000000000000?_format=application/fhir%2Bxml", headers=headers
    )
    assert response.status_code == 406


def test_xml_bodies_are_415(client, headers):
    response = client.post("/fhir", data="<Bundle/>", headers={**headers, "Content-Type": "application/fhir+xml"})
    assert response.status_code == 415
    assert _referrals() == 0


def test_invalid_utf8_and_truncated_json_are_400(client, headers):
    assert _post_raw(client, headers, b'{"resourceType": "Bundle", "type": "trans\xff"}').status_code == 400
    assert _post_raw(client, headers, b'{"resourceType": "Bundle"').status_code == 400
