"""FHIR R4 JSON helpers: media type, code systems, responses and OperationOutcome errors."""

import json

from flask import Response

FHIR_JSON = "application/fhir+json"

# Standard systems.
ICD10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
NPI = "http://hl7.org/fhir/sid/us-npi"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

# The portal's own code systems (documented in docs/architecture.md, "FHIR API"). Fixed URIs, not
# the deployment's address: a code's meaning must not change with the host name.
PORTAL_SYSTEM = "https://fhir.referral-portal.example/CodeSystem/"
REFERRAL_STATUS = PORTAL_SYSTEM + "referral-status"
SERVICE = PORTAL_SYSTEM + "requested-service"
VISIT_PREFERENCE = PORTAL_SYSTEM + "visit-preference"
INSTRUMENT = PORTAL_SYSTEM + "outcome-instrument"
PHASE = PORTAL_SYSTEM + "outcome-phase"
DATA_CLASS = PORTAL_SYSTEM + "consent-data-class"
REFERENCE = PORTAL_SYSTEM + "referral-reference"  # identifier system of the portal's RB-... numbers
PATIENT_IDENTIFIER = "https://fhir.referral-portal.example/sid/patient"  # identifier system of the portal's patient ids
# The one subscription topic (Subscriptions R5 Backport): a Task of the organization changed its status.
TASK_STATUS_TOPIC = "https://fhir.referral-portal.example/SubscriptionTopic/task-status"


class FhirError(Exception):
    """A refusal answered as an OperationOutcome; the diagnostics are safe to show (no PHI)."""

    def __init__(
        self,
        status: int,
        diagnostics: str,
        code: str = "invalid",
        expression: str | None = None,
        issues: list[dict] | None = None,
    ):
        super().__init__(diagnostics)
        self.status = status
        self.issues = issues or [issue(code, diagnostics, expression)]


def issue(code: str, diagnostics: str, expression: str | None = None, severity: str = "error") -> dict:
    item = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        item["expression"] = [expression]
    return item


def fhir_response(resource: dict, status: int = 200, headers: dict | None = None, pretty: bool = False) -> Response:
    body = json.dumps(resource, indent=2) if pretty else json.dumps(resource, separators=(",", ":"))
    response = Response(body, status=status, mimetype=FHIR_JSON, headers=headers or {})
    response.headers["Cache-Control"] = "no-store"
    return response


def operation_outcome(status: int, issues: list[dict], headers: dict | None = None) -> Response:
    return fhir_response({"resourceType": "OperationOutcome", "issue": issues}, status, headers)


STATUS_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    412: "duplicate",
    409: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    503: "transient",  # busy or unavailable: nothing was saved, retry after Retry-After
}


def http_outcome(status: int, diagnostics: str) -> Response:
    """The OperationOutcome for an HTTP error raised anywhere under /fhir (404, 405, 500, ...)."""
    return operation_outcome(status, [issue(STATUS_CODES.get(status, "exception"), diagnostics)])


def bearer_refusal(exc) -> Response:
    challenge = 'Bearer realm="fhir"'
    if exc.error != "invalid_request":
        challenge += f', error="{exc.error}"'
    return operation_outcome(exc.status, [issue(exc.code, exc.diagnostics)], {"WWW-Authenticate": challenge})
