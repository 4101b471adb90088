"""Test helpers for the FHIR API: keys, registered clients, signed assertions, tokens, referral Bundles."""

import base64
import time
import uuid
from functools import cache

from fhir.resources import construct_fhir_element
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from portal.api.services import register_client
from portal.api.smart import SCOPES
from portal.core.validators import npi_is_valid
from tests import factories

TOKEN_URL = "http://127.0.0.1:5000/fhir/auth/token"
ORDER_SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.2"
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.1"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALL_SCOPES = sorted(SCOPES)


@cache
def rsa_key(kid: str = "rsa-1") -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid})


@cache
def ec_key(kid: str = "ec-1") -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": kid})


def public_jwks(*keys) -> str:
    import json

    return json.dumps({"keys": [k.as_dict(private=False) for k in keys]})


def valid_npi(prefix: str = "123456789") -> str:
    return next(prefix + d for d in "0123456789" if npi_is_valid(prefix + d))


def make_client(organization, scopes=ALL_SCOPES, keys=None, **kwargs):
    admin = kwargs.pop("admin", None) or factories.make_user("admin")
    return register_client(
        admin,
        organization,
        kwargs.pop("name", "Test EHR"),
        public_jwks(*(keys or [rsa_key(), ec_key()])),
        None,
        list(scopes),
    )


def assertion(
    client, key=None, *, alg=None, aud=TOKEN_URL, exp_in=240, iat_offset=0, jti=None, kid=None, iss=None, sub=None
) -> str:
    key = key or rsa_key()
    alg = alg or ("RS384" if isinstance(key, RSAKey) else "ES384")
    now = int(time.time())
    claims = {
        "iss": iss or client.client_id,
        "sub": sub or client.client_id,
        "aud": aud,
        "exp": now + exp_in,
        "iat": now + iat_offset,
        "jti": jti or str(uuid.uuid4()),
    }
    return jwt.encode({"alg": alg, "kid": kid or key.kid, "typ": "JWT"}, claims, key, algorithms=[alg])


def token_request(http, client, scope="system/Task.read", **kwargs):
    return http.post(
        "/fhir/auth/token",
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(client, **kwargs),
        },
    )


def bearer(http, client, scope=" ".join(ALL_SCOPES)) -> dict:
    response = token_request(http, client, scope=scope)
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def referral_bundle(
    npi: str,
    *,
    codes=("M54.50",),
    reason="Low back pain for six weeks",
    attachments=(),
    family="Rivera",
    birth_date="1980-04-02",
    phone="(608) 555-0142",
    state="WI",
    order="ORDER-1",
    mrn="MRN-1",
    displays=True,
    if_none_exist=False,
) -> dict:
    """A referral transaction Bundle as an EHR sends it. ``order``: the ServiceRequest's identifier value (system
    ORDER_SYSTEM; None for none), ``mrn`` the Patient's (system MRN_SYSTEM)."""
    patient = {
        "resourceType": "Patient",
        "name": [{"family": family, "given": ["Ana"]}],
        "birthDate": birth_date,
        "gender": "female",
        "telecom": [{"system": "phone", "value": phone}] if phone else [],
        "address": [{"line": ["12 Elm St"], "city": "Madison", "state": state, "postalCode": "53703"}],
    }
    if mrn:
        patient["identifier"] = [
            {"type": {"coding": [{"system": V2_0203, "code": "MR"}]}, "system": MRN_SYSTEM, "value": mrn}
        ]
    request = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}],
        "priority": "routine",
        "subject": {"reference": "urn:uuid:patient-1"},
        "requester": {"reference": "urn:uuid:practitioner-1"},
        "reasonCode": [
            {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/sid/icd-10-cm",
                        "code": c,
                        **({"display": "Dx"} if displays else {}),
                    }
                    for c in codes
                ],
                **({"text": reason} if reason else {}),
            }
        ],
    }
    request_entry = {"method": "POST", "url": "ServiceRequest"}
    if order:
        request["identifier"] = [{"system": ORDER_SYSTEM, "value": order}]
        if if_none_exist:
            request_entry["ifNoneExist"] = f"identifier={ORDER_SYSTEM}|{order}"
    entries = [
        {"fullUrl": "urn:uuid:patient-1", "request": {"method": "POST", "url": "Patient"}, "resource": patient},
        {
            "fullUrl": "urn:uuid:practitioner-1",
            "request": {"method": "POST", "url": "Practitioner"},
            "resource": {
                "resourceType": "Practitioner",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": npi}],
            },
        },
        {"fullUrl": "urn:uuid:sr-1", "request": request_entry, "resource": request},
    ]
    for n, (title, data) in enumerate(attachments):
        entries.append(
            {
                "fullUrl": f"urn:uuid:doc-{n}",
                "request": {"method": "POST", "url": "DocumentReference"},
                "resource": {
                    "resourceType": "DocumentReference",
                    "status": "current",
                    "content": [
                        {
                            "attachment": {
                                "contentType": "application/pdf",
                                "title": title,
                                "data": base64.b64encode(data).decode(),
                            }
                        }
                    ],
                },
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def entry_of(bundle: dict, resource_type: str) -> dict:
    return next(e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type)


def created_id(response) -> uuid.UUID:
    """The referral a transaction made (or found): its ServiceRequest's id, which is also its Task's."""
    assert response.status_code == 200, response.get_json()
    bundle = response.get_json()
    assert bundle["type"] == "transaction-response"
    sr = next(e for e in bundle["entry"] if e.get("resource", {}).get("resourceType") == "ServiceRequest")
    return uuid.UUID(sr["resource"]["id"])


def post_bundle(http, headers, bundle):
    return http.post("/fhir", json=bundle, headers={**headers, "Content-Type": "application/fhir+json"})


# fhir.resources checks structure and datatypes but not value sets: the required bindings we emit, checked here.
REQUIRED_CODES = {
    ("Task", "status"): {
        "draft",
        "requested",
        "received",
        "accepted",
        "rejected",
        "ready",
        "cancelled",
        "in-progress",
        "on-hold",
        "failed",
        "completed",
        "entered-in-error",
    },
    ("Task", "intent"): {
        "unknown",
        "proposal",
        "plan",
        "order",
        "original-order",
        "reflex-order",
        "filler-order",
        "instance-order",
        "option",
    },
    ("ServiceRequest", "status"): {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"},
    ("ServiceRequest", "priority"): {"routine", "urgent", "asap", "stat"},
    ("Observation", "status"): {"registered", "preliminary", "final", "amended"},
    ("DocumentReference", "status"): {"current", "superseded", "entered-in-error"},
    ("Consent", "status"): {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"},
    ("OperationOutcome", "issue"): None,
}


def assert_valid_fhir(resource: dict):
    """Validates against FHIR R4 (4.0.1) with fhir.resources, plus required status codes; returns the model."""
    model = construct_fhir_element(resource["resourceType"], resource)
    for (kind, field), allowed in REQUIRED_CODES.items():
        if kind == resource["resourceType"] and allowed is not None and field in resource:
            assert resource[field] in allowed, (kind, field, resource[field])
    for entry in resource.get("entry", []) if resource["resourceType"] == "Bundle" else []:
        if "resource" in entry:
            assert_valid_fhir(entry["resource"])
    return model
