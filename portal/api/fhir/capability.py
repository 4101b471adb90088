"""What the server says about itself: CapabilityStatement, SMART configuration, OpenAPI description.

Each lists exactly what portal/api/views.py serves; tests compare them with the URL map.
"""

from datetime import UTC, datetime

from flask import current_app

from portal.api.fhir import FHIR_JSON, TASK_STATUS_TOPIC
from portal.api.fhir.notifications import TOPIC_CANONICAL
from portal.api.fhir.resources import (
    NOTIFICATION_PROFILE,
    PROFILES,
    STATUS_PROFILE,
    SUBSCRIPTION_PROFILE,
    US_CORE_VERSION,
)
from portal.api.fhir.searchparams import SEARCH_PARAMS
from portal.api.search import MAX_COUNT
from portal.api.smart import ALGORITHMS, supported_scopes, token_endpoint_url

# When this description last changed (CapabilityStatement.date; Organization/practice's lastUpdated).
STATEMENT_DATE = datetime(2026, 11, 30, tzinfo=UTC)
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
BACKPORT_SERVER = "http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4"
COUNT_PARAM = {"name": "_count", "type": "number", "documentation": f"Page size, 0-{MAX_COUNT} (default 50)."}
SEARCH_DOCUMENTATION = (
    "Search: a parameter's values separated by commas are OR, repeated parameters are AND; no modifiers. A malformed "
    "value is a 400 naming the parameter. Parameters not listed for a resource are refused (400) under "
    "'Prefer: handling=strict' and otherwise ignored, and the Bundle's self link lists only the parameters applied. "
    "Every search also takes _format (JSON only; another format is a 406) and _pretty (true or false). Pages are "
    "keyset pages: follow the next link, which keeps the filters."
)
# resource type -> (interactions, the v1 scope that grants them, what it is)
RESOURCES = {
    "Task": (
        "read search-type",
        "system/Task.read",
        "One per referral: status and businessStatus follow the portal's lifecycle. Its id is the referral's id; "
        "identifier holds the RB number and the identifiers the EHR gave its order.",
    ),
    "ServiceRequest": (
        "read",
        "system/ServiceRequest.read",
        "The referral as submitted (same id as its Task), with the EHR's identifiers, codes and authoredOn.",
    ),
    "Patient": (
        "read search-type",
        "system/Patient.read",
        "The patients the organization referred, as its referrals recorded them, with the identifiers (MRN) its "
        "EHR sent.",
    ),
    "Organization": (
        "read",
        "system/Organization.read",
        "The client's own organization, and Organization/practice (the practice: owner of every Task).",
    ),
    "Practitioner": ("read", "system/Practitioner.read", "The organization's referring clinicians."),
    "PractitionerRole": (
        "read",
        "system/PractitionerRole.read",
        "A referring clinician in the organization (the requester of its Tasks and ServiceRequests).",
    ),
    "Observation": (
        "read search-type",
        "system/Observation.read",
        "Outcome scores, only where a consent in effect today grants outcome scores to the organization.",
    ),
    "DocumentReference": (
        "read search-type",
        "system/DocumentReference.read",
        "Released progress updates and discharge summaries, only where consented today.",
    ),
    "Consent": (
        "read search-type",
        "system/Consent.read",
        "Consents in effect today that grant the organization a data class.",
    ),
    "Subscription": (
        "create read search-type delete",
        "system/Subscription.read / system/Subscription.write",
        "Topic-based subscriptions (R4 Subscriptions Backport) to the organization's Task status changes, topic "
        f"{TASK_STATUS_TOPIC}; rest-hook channel; $status.",
    ),
}
TRANSACTION_DOCUMENTATION = (
    "One referral per transaction Bundle: a Patient, a ServiceRequest (status active, intent order, category "
    "SNOMED CT 3457005, reasonCode with an ICD-10-CM coding beside any others, or a Condition it references), the "
    "requesting Practitioner or PractitionerRole with the clinician's NPI; optionally Organization, Condition, "
    "Coverage, QuestionnaireResponse and DocumentReferences with base64 attachments (kept with the referral); "
    "other resources are ignored with a warning. Conditional create: a ServiceRequest identifier (system|value) "
    "the organization submitted before returns that referral (200 OK entries) and creates nothing, with or without "
    "ifNoneExist=identifier=system|value. Answers 200 with a transaction-response Bundle (per-entry status, "
    "Location, ETag). Scope system/ServiceRequest.write (or system/ServiceRequest.c)."
)


def base_url() -> str:
    return current_app.config["PORTAL_BASE_URL"].rstrip("/") + "/fhir"


def capability_statement() -> dict:
    resources = []
    for kind, (interactions, scope, doc) in RESOURCES.items():
        entry = {
            "type": kind,
            "documentation": f"{doc} Scope: {scope}.",
            "interaction": [{"code": code} for code in interactions.split()],
            "versioning": "versioned",
            "readHistory": False,
            "updateCreate": False,
        }
        if kind in PROFILES:
            entry["supportedProfile"] = [f"{PROFILES[kind]}|{US_CORE_VERSION}"]
        if kind == "ServiceRequest":
            entry["conditionalCreate"] = True
        if kind == "Subscription":
            entry["supportedProfile"] = [SUBSCRIPTION_PROFILE]
            entry["extension"] = [{"url": TOPIC_CANONICAL, "valueCanonical": TASK_STATUS_TOPIC}]
            entry["operation"] = [
                {
                    "name": "status",
                    "definition": "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status",
                    "documentation": "GET [base]/Subscription/[id]/$status: a searchset Bundle with the status "
                    "(Parameters, profile " + STATUS_PROFILE + ").",
                }
            ]
        if "search-type" in interactions:
            entry["searchParam"] = [
                {"name": p.name, "type": p.type, "documentation": p.documentation} for p in SEARCH_PARAMS[kind].values()
            ] + [COUNT_PARAM]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": STATEMENT_DATE.date().isoformat(),
        "kind": "instance",
        "instantiates": [BACKPORT_SERVER],
        "publisher": current_app.config["PORTAL_NAME"],
        "implementation": {"description": "Referral partner portal FHIR API", "url": base_url()},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "patchFormat": [],
        "rest": [
            {
                "mode": "server",
                "documentation": "SMART Backend Services (client credentials with a signed JWT), SMART v1 and v2 "
                "system scopes. Another organization's resources answer 404 and never appear in a search or a "
                "notification. Errors are OperationOutcome. Notifications: "
                + NOTIFICATION_PROFILE
                + ". "
                + SEARCH_DOCUMENTATION,
                "security": {
                    "extension": [
                        {"url": OAUTH_URIS, "extension": [{"url": "token", "valueUri": token_endpoint_url()}]}
                    ],
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": f"Token endpoint {token_endpoint_url()}; see .well-known/smart-configuration.",
                },
                "resource": resources,
                "interaction": [{"code": "transaction", "documentation": TRANSACTION_DOCUMENTATION}],
            }
        ],
    }


def smart_configuration() -> dict:
    return {
        "issuer": base_url(),
        "token_endpoint": token_endpoint_url(),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": supported_scopes(),
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    }


# --- OpenAPI 3.0: every route, with schemas that describe the real bodies ----------------------------


def _outcome(description: str) -> dict:
    return {
        "description": description,
        "content": {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}},
    }


def _fhir(description: str, schema: str = "Resource", headers: dict | None = None) -> dict:
    response = {
        "description": description,
        "content": {FHIR_JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }
    if headers:
        response["headers"] = headers
    return response


ETAG_HEADER = {"ETag": {"description": 'W/"<versionId>"', "schema": {"type": "string"}}}
AUTH_ERRORS = {"401": _outcome("No, invalid or expired access token"), "403": _outcome("The token lacks the scope")}
COMMON_ERRORS = {"406": _outcome("An Accept header or _format that rules out FHIR JSON"), **AUTH_ERRORS}
ID_PARAM = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
SEARCH_CONTROL = [
    {
        "name": "_count",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": COUNT_PARAM["documentation"],
    },
    {
        "name": "_cursor",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Opaque; taken from a Bundle's next link.",
    },
    {
        "name": "_format",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "json, application/json or application/fhir+json; any other format is a 406.",
    },
    {
        "name": "_pretty",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["true", "false"]},
        "description": "true: indented JSON.",
    },
    {
        "name": "Prefer",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "handling=strict: an unsupported parameter is a 400; handling=lenient (the default): it is "
        "ignored and left out of the self link.",
    },
]
EXAMPLE_NPI = "1234567893"  # a well-formed NPI (check digit), as in docs/fhir.md


def search_query(kind: str) -> list[dict]:
    """The query parameters of a search: the resource's search parameters (repeatable: AND) and the controls."""
    return [
        {
            "name": p.name,
            "in": "query",
            "required": False,
            "style": "form",
            "explode": True,
            "schema": {"type": "array", "items": {"type": "string"}},
            "description": f"{p.type}: {p.documentation}",
        }
        for p in SEARCH_PARAMS[kind].values()
    ] + SEARCH_CONTROL


def example_referral(npi: str = EXAMPLE_NPI) -> dict:
    """A complete referral transaction Bundle (also the request body's example in the OpenAPI description)."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:4b6f6c2e-1a59-4c1e-9a33-0f3e6d0b3a01",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [
                        {
                            "type": {
                                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]
                            },
                            "system": "urn:oid:2.16.840.1.113883.3.9999.1",
                            "value": "MRN-0001",
                        }
                    ],
                    "name": [{"family": "Rivera", "given": ["Ana"]}],
                    "gender": "female",
                    "birthDate": "1980-04-02",
                    "address": [{"line": ["12 Elm St"], "city": "Madison", "state": "WI", "postalCode": "53703"}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:4b6f6c2e-1a59-4c1e-9a33-0f3e6d0b3a02",
                "resource": {
                    "resourceType": "Practitioner",
                    "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": npi}],
                    "name": [{"family": "Lee", "given": ["Sam"]}],
                },
                "request": {"method": "POST", "url": "Practitioner"},
            },
            {
                "fullUrl": "urn:uuid:4b6f6c2e-1a59-4c1e-9a33-0f3e6d0b3a03",
                "resource": {
                    "resourceType": "ServiceRequest",
                    "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.9999.2", "value": "ORDER-0001"}],
                    "status": "active",
                    "intent": "order",
                    "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "3457005"}]}],
                    "code": {
                        "coding": [
                            {
                                "system": "http://snomed.info/sct",
                                "code": "91251008",
                                "display": "Physical therapy procedure",
                            }
                        ]
                    },
                    "priority": "routine",
                    "subject": {"reference": "urn:uuid:4b6f6c2e-1a59-4c1e-9a33-0f3e6d0b3a01"},
                    "requester": {"reference": "urn:uuid:4b6f6c2e-1a59-4c1e-9a33-0f3e6d0b3a02"},
                    "authoredOn": "2026-11-02T09:30:00-06:00",
                    "reasonCode": [
                        {
                            "coding": [
                                {
                                    "system": "http://hl7.org/fhir/sid/icd-10-cm",
                                    "code": "M54.50",
                                    "display": "Low back pain, unspecified",
                                },
                                {"system": "http://snomed.info/sct", "code": "279039007", "display": "Low back pain"},
                            ],
                            "text": "Low back pain for six weeks",
                        }
                    ],
                },
                "request": {
                    "method": "POST",
                    "url": "ServiceRequest",
                    "ifNoneExist": "identifier=urn:oid:2.16.840.1.113883.3.9999.2|ORDER-0001",
                },
            },
        ],
    }


def example_subscription(endpoint: str = "https://ehr.example/fhir-notifications") -> dict:
    return {
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "Follow our referrals",
        "criteria": TASK_STATUS_TOPIC,
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": FHIR_JSON,
            "_payload": {
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content",
                        "valueCode": "id-only",
                    }
                ]
            },
        },
    }


def _read(kind: str, doc: str, name: str | None = None) -> dict:
    return {
        "get": {
            "operationId": name or f"read{kind}",
            "summary": doc,
            "parameters": [ID_PARAM],
            "responses": {
                "200": _fhir(kind, kind, ETAG_HEADER),
                "404": _outcome("Unknown, or not yours"),
                **COMMON_ERRORS,
            },
        }
    }


def openapi() -> dict:
    paths = {
        "/fhir/metadata": {
            "get": {
                "operationId": "metadata",
                "security": [],
                "responses": {"200": _fhir("CapabilityStatement", "CapabilityStatement"), "406": _outcome("Not JSON")},
            }
        },
        **{
            path: {
                "get": {
                    "operationId": name,
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "SMART configuration",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/SmartConfiguration"}}
                            },
                        },
                        "406": _outcome("Not JSON"),
                    },
                }
            }
            for path, name in (
                ("/.well-known/smart-configuration", "smartConfiguration"),
                ("/fhir/.well-known/smart-configuration", "fhirSmartConfiguration"),
            )
        },
        "/fhir/auth/token": {
            "post": {
                "operationId": "token",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "grant_type": {"type": "string", "enum": ["client_credentials"]},
                                    "scope": {"type": "string"},
                                    "client_assertion_type": {"type": "string"},
                                    "client_assertion": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "Access token",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Token"}}},
                    },
                    "400": {
                        "description": "OAuth 2 error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}},
                    },
                    "401": {
                        "description": "OAuth 2 error (invalid_client)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}},
                    },
                    "406": _outcome("Not JSON"),
                    "429": {"description": "Too many token requests from this address"},
                },
            }
        },
        "/fhir": {
            "post": {
                "operationId": "transaction",
                "summary": TRANSACTION_DOCUMENTATION,
                "requestBody": {
                    "required": True,
                    "content": {
                        FHIR_JSON: {
                            "schema": {"$ref": "#/components/schemas/TransactionBundle"},
                            "example": example_referral(),
                        }
                    },
                },
                "responses": {
                    "200": _fhir("transaction-response Bundle: one entry per entry sent", "TransactionResponse"),
                    "400": _outcome("Not a transaction Bundle, malformed, too deep or too big"),
                    "409": _outcome("The same order is being submitted by another request at this moment"),
                    "412": _outcome("The ServiceRequest's identifiers match two different referrals"),
                    "413": _outcome("Body too large"),
                    "415": _outcome("Not JSON"),
                    "422": _outcome("The referral does not pass validation"),
                    **COMMON_ERRORS,
                },
            }
        },
        "/fhir/openapi.json": {
            "get": {
                "operationId": "openapi",
                "security": [],
                "responses": {
                    "200": {
                        "description": "This document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    "406": _outcome("Not JSON"),
                },
            }
        },
        "/fhir/Subscription": {
            "post": {
                "operationId": "createSubscription",
                "summary": RESOURCES["Subscription"][2],
                "requestBody": {
                    "required": True,
                    "content": {
                        FHIR_JSON: {
                            "schema": {"$ref": "#/components/schemas/SubscriptionRequest"},
                            "example": example_subscription(),
                        }
                    },
                },
                "responses": {
                    "201": _fhir(
                        "The subscription, active; a handshake notification follows",
                        "Subscription",
                        {**ETAG_HEADER, "Location": {"schema": {"type": "string"}}},
                    ),
                    "400": _outcome("Not a Subscription, or malformed"),
                    "413": _outcome("Body too large"),
                    "415": _outcome("Not JSON"),
                    "422": _outcome("Not a subscription this server offers"),
                    **COMMON_ERRORS,
                },
            },
        },
        "/fhir/Subscription/{id}/$status": {
            "get": {
                "operationId": "subscriptionStatus",
                "parameters": [ID_PARAM],
                "responses": {
                    "200": _fhir("searchset Bundle with the subscription's status (Parameters)", "Bundle"),
                    "404": _outcome("Unknown, or not this client's"),
                    **COMMON_ERRORS,
                },
            }
        },
    }
    for kind, (interactions, _scope, doc) in RESOURCES.items():
        if "search-type" in interactions:
            paths.setdefault(f"/fhir/{kind}", {})["get"] = {
                "operationId": f"search{kind}",
                "summary": doc,
                "parameters": search_query(kind),
                "responses": {
                    "200": _fhir("searchset Bundle", "Bundle"),
                    "400": _outcome(
                        "A malformed value, a modifier, or (under Prefer: handling=strict) an unsupported parameter"
                    ),
                    **COMMON_ERRORS,
                },
            }
        paths[f"/fhir/{kind}/{{id}}"] = _read(kind, doc)
    paths["/fhir/Subscription/{id}"]["delete"] = {
        "operationId": "deleteSubscription",
        "parameters": [ID_PARAM],
        "responses": {
            "204": {"description": "Unsubscribed"},
            "404": _outcome("Unknown, or not this client's"),
            **COMMON_ERRORS,
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Referral partner portal FHIR R4 API",
            "version": "2.0.0",
            "description": "FHIR R4 JSON. Authorize with SMART Backend Services; see /fhir/metadata and docs/fhir.md.",
        },
        "servers": [{"url": current_app.config["PORTAL_BASE_URL"].rstrip("/")}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": _schemas()},
    }


# --- schemas: what each body really holds (not a full FHIR schema: the elements this server sends) ----------

_STRING = {"type": "string", "minLength": 1}
_REFERENCE = {
    "type": "object",
    "properties": {"reference": _STRING, "type": _STRING, "display": {"type": "string"}},
}
_CODING = {
    "type": "object",
    "required": ["code"],
    "properties": {"system": _STRING, "code": _STRING, "display": {"type": "string"}},
}
_CONCEPT = {"type": "object", "properties": {"coding": {"type": "array", "items": _CODING}, "text": {"type": "string"}}}
_IDENTIFIER = {
    "type": "object",
    "required": ["value"],
    "properties": {"system": _STRING, "value": _STRING, "type": _CONCEPT},
}
_META = {
    "type": "object",
    "required": ["versionId", "lastUpdated"],
    "properties": {
        "versionId": _STRING,
        "lastUpdated": _STRING,
        "profile": {"type": "array", "items": _STRING},
    },
}


def _resource(kind: str, required: list[str], properties: dict) -> dict:
    return {
        "type": "object",
        "required": ["resourceType", "id", "meta", *required],
        "properties": {
            "resourceType": {"type": "string", "enum": [kind]},
            "id": _STRING,
            "meta": _META,
            **properties,
        },
    }


def _schemas() -> dict:
    task_status = ["requested", "accepted", "rejected", "in-progress", "on-hold", "completed", "cancelled"]
    issue_schema = {
        "type": "object",
        "required": ["severity", "code"],
        "properties": {
            "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
            "code": _STRING,
            "diagnostics": {"type": "string"},
            "expression": {"type": "array", "items": _STRING},
        },
    }
    return {
        "Resource": {"type": "object", "required": ["resourceType"], "properties": {"resourceType": _STRING}},
        "OperationOutcome": {
            "type": "object",
            "required": ["resourceType", "issue"],
            "properties": {
                "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
                "issue": {"type": "array", "minItems": 1, "items": issue_schema},
            },
        },
        "Bundle": {
            "type": "object",
            "required": ["resourceType", "type", "link"],
            "properties": {
                "resourceType": {"type": "string", "enum": ["Bundle"]},
                "type": {"type": "string", "enum": ["searchset"]},
                "total": {"type": "integer", "minimum": 0},
                "link": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["relation", "url"],
                        "properties": {"relation": _STRING, "url": _STRING},
                    },
                },
                "entry": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["fullUrl", "resource"],
                        "properties": {"fullUrl": _STRING, "resource": {"$ref": "#/components/schemas/Resource"}},
                    },
                },
            },
        },
        "TransactionBundle": {
            "type": "object",
            "required": ["resourceType", "type", "entry"],
            "properties": {
                "resourceType": {"type": "string", "enum": ["Bundle"]},
                "type": {"type": "string", "enum": ["transaction"]},
                "entry": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["resource", "request"],
                        "properties": {
                            "fullUrl": _STRING,
                            "resource": {"$ref": "#/components/schemas/Resource"},
                            "request": {
                                "type": "object",
                                "required": ["method", "url"],
                                "properties": {"method": _STRING, "url": _STRING, "ifNoneExist": _STRING},
                            },
                        },
                    },
                },
            },
        },
        "TransactionResponse": {
            "type": "object",
            "required": ["resourceType", "type", "entry"],
            "properties": {
                "resourceType": {"type": "string", "enum": ["Bundle"]},
                "type": {"type": "string", "enum": ["transaction-response"]},
                "entry": {
                    "type": "array",
                    "minItems": 2,
                    "items": {
                        "type": "object",
                        "required": ["response"],
                        "properties": {
                            "fullUrl": _STRING,
                            "resource": {"$ref": "#/components/schemas/Resource"},
                            "response": {
                                "type": "object",
                                "required": ["status"],
                                "properties": {
                                    "status": {"type": "string", "pattern": "^(200 OK|201 Created)$"},
                                    "location": _STRING,
                                    "etag": _STRING,
                                    "lastModified": _STRING,
                                    "outcome": {"$ref": "#/components/schemas/OperationOutcome"},
                                },
                            },
                        },
                    },
                },
            },
        },
        "CapabilityStatement": {
            "type": "object",
            "required": ["resourceType", "status", "date", "kind", "fhirVersion", "format", "rest"],
            "properties": {
                "resourceType": {"type": "string", "enum": ["CapabilityStatement"]},
                "fhirVersion": {"type": "string", "enum": ["4.0.1"]},
                "rest": {"type": "array", "minItems": 1},
            },
        },
        "SmartConfiguration": {
            "type": "object",
            "required": ["token_endpoint", "scopes_supported", "capabilities"],
            "properties": {
                "token_endpoint": _STRING,
                "scopes_supported": {"type": "array", "items": _STRING},
                "capabilities": {"type": "array", "items": _STRING},
            },
        },
        "Token": {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in", "scope"],
            "properties": {
                "access_token": {"type": "string"},
                "token_type": {"type": "string"},
                "expires_in": {"type": "integer"},
                "scope": {"type": "string"},
            },
        },
        "OAuthError": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
        },
        "Task": _resource(
            "Task",
            ["identifier", "status", "intent", "focus", "for", "authoredOn", "requester", "owner"],
            {
                "identifier": {"type": "array", "minItems": 1, "items": _IDENTIFIER},
                "status": {"type": "string", "enum": task_status},
                "businessStatus": _CONCEPT,
                "intent": {"type": "string", "enum": ["order"]},
                "focus": _REFERENCE,
                "for": _REFERENCE,
                "requester": _REFERENCE,
                "owner": _REFERENCE,
            },
        ),
        "ServiceRequest": _resource(
            "ServiceRequest",
            ["identifier", "status", "intent", "category", "code", "subject", "requester", "reasonCode"],
            {
                "identifier": {"type": "array", "minItems": 1, "items": _IDENTIFIER},
                "status": {"type": "string", "enum": ["active", "completed", "revoked"]},
                "intent": {"type": "string", "enum": ["order"]},
                "code": _CONCEPT,
                "subject": _REFERENCE,
                "requester": _REFERENCE,
                "reasonCode": {"type": "array", "minItems": 1, "items": _CONCEPT},
            },
        ),
        "Patient": _resource(
            "Patient",
            ["identifier", "name", "gender", "birthDate"],
            {
                "identifier": {"type": "array", "minItems": 1, "items": _IDENTIFIER},
                "name": {"type": "array", "minItems": 1},
                "gender": {"type": "string", "enum": ["male", "female", "other", "unknown"]},
                "birthDate": _STRING,
            },
        ),
        "Organization": _resource("Organization", ["active", "name"], {"active": {"type": "boolean"}, "name": _STRING}),
        "Practitioner": _resource("Practitioner", ["name"], {"name": {"type": "array", "minItems": 1}}),
        "PractitionerRole": _resource(
            "PractitionerRole",
            ["practitioner", "organization", "telecom"],
            {"practitioner": _REFERENCE, "organization": _REFERENCE, "telecom": {"type": "array", "minItems": 1}},
        ),
        "Observation": _resource(
            "Observation",
            ["status", "category", "code", "subject", "effectiveDateTime", "valueQuantity"],
            {
                "status": {"type": "string", "enum": ["final"]},
                "code": _CONCEPT,
                "subject": _REFERENCE,
                "valueQuantity": {"type": "object", "required": ["value"], "properties": {"value": {"type": "number"}}},
            },
        ),
        "DocumentReference": _resource(
            "DocumentReference",
            ["status", "type", "category", "subject", "content"],
            {
                "status": {"type": "string", "enum": ["current"]},
                "type": _CONCEPT,
                "category": {"type": "array", "minItems": 1, "items": _CONCEPT},
                "subject": _REFERENCE,
                "content": {"type": "array", "minItems": 1},
            },
        ),
        "Consent": _resource(
            "Consent",
            ["status", "scope", "category", "patient", "provision"],
            {"status": {"type": "string", "enum": ["active", "inactive"]}, "patient": _REFERENCE},
        ),
        "Subscription": _resource(
            "Subscription",
            ["status", "reason", "criteria", "channel"],
            {
                "status": {"type": "string", "enum": ["requested", "active", "error", "off"]},
                "criteria": {"type": "string", "enum": [TASK_STATUS_TOPIC]},
                "channel": {
                    "type": "object",
                    "required": ["type", "endpoint"],
                    "properties": {"type": {"type": "string", "enum": ["rest-hook"]}, "endpoint": _STRING},
                },
            },
        ),
        "SubscriptionRequest": {
            "type": "object",
            "required": ["resourceType", "status", "reason", "criteria", "channel"],
            "properties": {
                "resourceType": {"type": "string", "enum": ["Subscription"]},
                "status": {"type": "string"},
                "reason": {"type": "string"},
                "criteria": {"type": "string"},
                "channel": {"type": "object"},
            },
        },
    }
