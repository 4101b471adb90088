"""What the server says about itself: CapabilityStatement, SMART configuration, OpenAPI description.

Each lists exactly what portal/api/views.py serves; tests compare them with the URL map.
"""

from flask import current_app

from portal.api.fhir.searchparams import SEARCH_PARAMS
from portal.api.search import MAX_COUNT
from portal.api.smart import ALGORITHMS, SCOPES, token_endpoint_url

COUNT_PARAM = {"name": "_count", "type": "number", "documentation": f"Page size, 0-{MAX_COUNT} (default 50)."}
SEARCH_DOCUMENTATION = (
    "Search: a parameter's values separated by commas are OR, repeated parameters are AND; no modifiers. A malformed "
    "value is a 400 naming the parameter. Parameters not listed for a resource are refused (400) under "
    "'Prefer: handling=strict' and otherwise ignored, and the Bundle's self link lists only the parameters applied. "
    "Every search also takes _format (JSON only; another format is a 406) and _pretty (true or false). Pages are "
    "keyset pages: follow the next link, which keeps the filters."
)
# resource type -> (interactions, scope needed to read, what it is)
RESOURCES = {
    "Task": (
        "read search-type",
        "system/Task.read",
        "One per referral: status and businessStatus follow the portal's lifecycle. Its id is the referral's id.",
    ),
    "ServiceRequest": ("read", "system/ServiceRequest.read", "The referral as submitted (same id as its Task)."),
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
}


def base_url() -> str:
    return current_app.config["PORTAL_BASE_URL"].rstrip("/") + "/fhir"


def capability_statement() -> dict:
    resources = []
    for kind, (interactions, scope, doc) in RESOURCES.items():
        entry = {
            "type": kind,
            "documentation": f"{doc} Scope: {scope}.",
            "interaction": [{"code": code} for code in interactions.split()],
            "versioning": "no-version",
            "readHistory": False,
            "updateCreate": False,
        }
        if "search-type" in interactions:
            entry["searchParam"] = [
                {"name": p.name, "type": p.type, "documentation": p.documentation} for p in SEARCH_PARAMS[kind].values()
            ] + [COUNT_PARAM]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-01-01",
        "kind": "instance",
        "publisher": current_app.config["PORTAL_NAME"],
        "implementation": {"description": "Referral partner portal FHIR API", "url": base_url()},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "SMART Backend Services (client credentials with a signed JWT). "
                "Another organization's resources answer 404 and never appear in a search. "
                "Errors are OperationOutcome. " + SEARCH_DOCUMENTATION,
                "security": {
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
                "interaction": [
                    {
                        "code": "transaction",
                        "documentation": (
                            "One referral per transaction Bundle: Patient, ServiceRequest (intent order, "
                            "category referral, reasonCode ICD-10-CM), the requesting Practitioner with an NPI, "
                            "optional DocumentReferences with base64 attachments. Scope "
                            "system/ServiceRequest.write. Answers 201 with the Task created to track the referral "
                            "(not a transaction-response Bundle)."
                        ),
                    }
                ],
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
        "scopes_supported": sorted(SCOPES),
        "capabilities": ["client-confidential-asymmetric"],
    }


def _outcome(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/fhir+json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}},
    }


def _fhir(description: str, schema: str = "Resource") -> dict:
    return {
        "description": description,
        "content": {"application/fhir+json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


AUTH_ERRORS = {"401": _outcome("No, invalid or expired access token"), "403": _outcome("The token lacks the scope")}
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


def openapi() -> dict:
    paths = {
        "/fhir/metadata": {
            "get": {"operationId": "metadata", "security": [], "responses": {"200": _fhir("CapabilityStatement")}}
        },
        **{
            path: {
                "get": {
                    "operationId": name,
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "SMART configuration",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
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
                    "429": {"description": "Too many token requests from this address"},
                },
            }
        },
        "/fhir": {
            "post": {
                "operationId": "transaction",
                "requestBody": {
                    "required": True,
                    "content": {"application/fhir+json": {"schema": {"$ref": "#/components/schemas/Resource"}}},
                },
                "responses": {
                    "201": _fhir("The Task created for the referral"),
                    "400": _outcome("Not a transaction Bundle, or malformed"),
                    "413": _outcome("Body too large"),
                    "415": _outcome("Not JSON"),
                    "422": _outcome("The referral does not pass validation"),
                    **AUTH_ERRORS,
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
                    }
                },
            }
        },
    }
    for kind, (interactions, _scope, doc) in RESOURCES.items():
        if "search-type" in interactions:
            paths[f"/fhir/{kind}"] = {
                "get": {
                    "operationId": f"search{kind}",
                    "summary": doc,
                    "parameters": search_query(kind),
                    "responses": {
                        "200": _fhir("searchset Bundle", "Bundle"),
                        "400": _outcome(
                            "A malformed value, a modifier, or (under Prefer: handling=strict) an unsupported parameter"
                        ),
                        "406": _outcome("A _format other than JSON"),
                        **AUTH_ERRORS,
                    },
                }
            }
        paths[f"/fhir/{kind}/{{id}}"] = {
            "get": {
                "operationId": f"read{kind}",
                "summary": doc,
                "parameters": [ID_PARAM],
                "responses": {"200": _fhir(kind), "404": _outcome("Unknown, or not yours"), **AUTH_ERRORS},
            }
        }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Referral partner portal FHIR R4 API",
            "version": "1.0.0",
            "description": "FHIR R4 JSON. Authorize with SMART Backend Services; see /fhir/metadata.",
        },
        "servers": [{"url": current_app.config["PORTAL_BASE_URL"].rstrip("/")}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Resource": {
                    "type": "object",
                    "required": ["resourceType"],
                    "properties": {"resourceType": {"type": "string"}},
                },
                "Bundle": {
                    "type": "object",
                    "required": ["resourceType", "type"],
                    "properties": {
                        "resourceType": {"type": "string", "enum": ["Bundle"]},
                        "type": {"type": "string"},
                        "total": {"type": "integer"},
                        "link": {"type": "array"},
                        "entry": {"type": "array"},
                    },
                },
                "OperationOutcome": {
                    "type": "object",
                    "required": ["resourceType", "issue"],
                    "properties": {
                        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
                        "issue": {"type": "array", "minItems": 1},
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
                **{
                    kind: {
                        "type": "object",
                        "required": ["resourceType", "id"],
                        "properties": {"resourceType": {"type": "string", "enum": [kind]}, "id": {"type": "string"}},
                    }
                    for kind in RESOURCES
                },
            },
        },
    }
