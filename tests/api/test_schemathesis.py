"""Property-based tests of the OpenAPI description, with a real token against real data.

1. Every operation, generated requests (a few dozen each): no server error, no status code, content type or
   body the description does not list. Reads run again with the ids of resources organization A's client can
   read (seeded below), so real resources come back and their 200 bodies are checked against the schemas,
   not only 404s.
2. Stateful: create a referral (the description's own example Bundle) and a subscription, then follow the
   OpenAPI links to read, search and delete what was created (create -> read -> search), with the same checks
   plus schemathesis' stateful ones (a created resource is available; a deleted one is gone).

Each request runs in a fresh context (as IsolatedClient does), with a valid token of organization A's client,
against a database holding some of A's and B's data. Bounded and derandomized: well under a minute.
"""

import contextvars
import copy
import itertools
from datetime import date

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from portal.api.fhir.capability import EXAMPLE_NPI, example_referral
from portal.consent.models import Category
from portal.core.permissions import Role
from portal.outcomes.models import Instrument, OutcomeScore, Phase
from tests import factories
from tests.api.helpers import bearer, make_client
from tests.consent.helpers import add_consent, add_update

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
HYPOTHESIS = dict(deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))


@pytest.fixture
def api_world(app, db, client, org_a, org_b):
    """Each organization's referral, with a score, a consent and a released update; organization A's clinician
    with the example Bundle's NPI; a token of organization A's client. Returns (headers, A's ids by type)."""
    staff = factories.make_user(Role.STAFF)
    clinician = factories.make_user(Role.PARTNER, org_a, npi=EXAMPLE_NPI)
    ids: dict[str, list[str]] = {}
    for org in (org_a, org_b):
        referral = factories.make_referral(org, clinician if org is org_a else None)
        instrument = db.session.scalar(db.select(Instrument).where(Instrument.code == "NPRS"))
        score = OutcomeScore(
            referral_id=referral.id,
            instrument_id=instrument.id,
            phase=Phase.INTAKE,
            measured_on=date(2026, 1, 5),
            score=6,
            recorded_by_id=staff.id,
        )
        db.session.add(score)
        consent = add_consent(referral, categories=(Category.OUTCOME_SCORES, Category.PROGRESS_NOTES))
        update = add_update(referral, staff)
        db.session.flush()
        if org is org_a:
            ids = {
                "Task": [str(referral.public_id)],
                "ServiceRequest": [str(referral.public_id)],
                "Patient": [str(referral.patient.public_id)],
                "Organization": [str(org_a.public_id), "practice"],
                "Practitioner": [str(clinician.public_id)],
                "PractitionerRole": [str(clinician.public_id)],
                "Observation": [str(score.public_id)],
                "DocumentReference": [str(update.public_id)],
                "Consent": [str(consent.public_id)],
            }
    return bearer(client, make_client(org_a)), ids


def _isolated(app):
    def wsgi(environ, start_response):
        return contextvars.Context().run(app, environ, start_response)

    return wsgi


def _description(client) -> dict:
    return copy.deepcopy(client.get("/fhir/openapi.json").get_json())


def test_openapi_conformance(app, client, api_world):
    headers, ids = api_world
    raw = _description(client)
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = _isolated(app)
    served = {
        (m, rule.rule.replace("<id>", "{id}"))
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("fhir.")
        for m in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(m.upper(), path) for path, item in raw["paths"].items() for m in item}
    assert documented == served  # the description lists every route of the API, and nothing else
    statuses: dict[str, set[int]] = {}

    def exercise(operation, strategy, examples: int) -> None:
        @given(case=strategy)
        @settings(max_examples=examples, **HYPOTHESIS)
        def run(case):
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses.setdefault(operation.label, set()).add(response.status_code)

        run()

    for result in schema.get_all_operations():
        operation = result.ok()
        exercise(operation, operation.as_strategy(), 25)
        # Reads of real resources too (their query and headers still generated), so 200 bodies are checked.
        kind = operation.path.split("/")[2] if operation.path.endswith("/{id}") else None
        for real in ids.get(kind, []):
            exercise(operation, operation.as_strategy(path_parameters={"id": real}), 5)
    reads = {label: codes for label, codes in statuses.items() if label.startswith("GET /fhir/") and "{id}" in label}
    assert all(200 in codes for label, codes in reads.items() if "Subscription" not in label), reads


LINKS = {
    # transaction 200 -> what it created. The example Bundle lists Patient, Practitioner, ServiceRequest.
    ("/fhir", "post", "200"): {
        "ReadServiceRequest": ("readServiceRequest", {"id": "$response.body#/entry/2/resource/id"}),
        "ReadTask": ("readTask", {"id": "$response.body#/entry/2/resource/id"}),
        "SearchTask": ("searchTask", {"_id": "$response.body#/entry/2/resource/id"}),
        "ReadPatient": ("readPatient", {"id": "$response.body#/entry/0/resource/id"}),
        "SearchPatient": ("searchPatient", {"_id": "$response.body#/entry/0/resource/id"}),
    },
    ("/fhir/Subscription", "post", "201"): {
        "ReadSubscription": ("readSubscription", {"id": "$response.body#/id"}),
        "SubscriptionStatus": ("subscriptionStatus", {"id": "$response.body#/id"}),
        "DeleteSubscription": ("deleteSubscription", {"id": "$response.body#/id"}),
    },
}


def test_stateful_create_read_search(app, client, api_world):
    headers, _ids = api_world
    raw = _description(client)
    for (path, method, status), links in LINKS.items():
        raw["paths"][path][method]["responses"][status]["links"] = {
            name: {"operationId": operation, "parameters": parameters}
            for name, (operation, parameters) in links.items()
        }
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = _isolated(app)
    orders = itertools.count(1)
    seen: list[tuple[str, int]] = []

    class Machine(schema.as_state_machine()):
        def before_call(self, case):
            case.headers = {**(case.headers or {}), **headers}  # the real token, not a generated one
            # Creates send a real referral (a new order each time) and a real subscription; the reads, searches
            # and deletes that follow get their ids from the OpenAPI links.
            if case.operation.label == "POST /fhir":
                bundle = example_referral()
                order = bundle["entry"][2]
                order["resource"]["identifier"][0]["value"] = f"ORDER-{next(orders)}"
                order["request"]["ifNoneExist"] = "identifier={}|{}".format(
                    order["resource"]["identifier"][0]["system"], order["resource"]["identifier"][0]["value"]
                )
                case.body = bundle
            elif case.operation.label == "POST /fhir/Subscription":
                from portal.api.fhir.capability import example_subscription

                case.body = example_subscription()

        def after_call(self, response, case):
            seen.append((case.operation.label, response.status_code))

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS)

    Machine.run(settings=settings(max_examples=15, stateful_step_count=6, **HYPOTHESIS))
    # Things were created, and the links were followed to them: reads of what was just created answered 200.
    assert ("POST /fhir", 200) in seen and ("POST /fhir/Subscription", 201) in seen, sorted(set(seen))
    followed = {label for label, status in seen if status == 200 and label.startswith("GET")}
    created = {"GET /fhir/ServiceRequest/{id}", "GET /fhir/Task/{id}", "GET /fhir/Patient/{id}", "GET /fhir/Task"}
    assert followed & created and "GET /fhir/Subscription/{id}" in followed, sorted(set(seen))
    assert not [label for label, status in seen if status == 401], "every call carried the token"
