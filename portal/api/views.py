"""The FHIR API under /fhir and SMART discovery. Bearer tokens, not sessions: the blueprint is CSRF-exempt.

Views load through the scoped queries (another organization's id is a 404), call one service, audit with the
client as actor, and respond with FHIR JSON; the request commits once, as everywhere.
"""

import json
import uuid
from urllib.parse import urlencode

from flask import Blueprint, g, jsonify, request
from sqlalchemy import and_, func, or_, select
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from portal.api import queries, search, submissions, subscriptions
from portal.api.delivery import add_commands
from portal.api.fhir import (
    FhirError,
    capability,
    fhir_response,
    http_outcome,
    intake,
    issue,
    operation_outcome,
    resources,
)
from portal.api.fhir.body import JSON_TYPES, json_acceptable, json_format, parse_json
from portal.api.fhir.notifications import status_bundle
from portal.api.fhir.notifications import subscription as subscription_resource
from portal.api.fhir.searchparams import SEARCH_PARAMS
from portal.api.fhir.transaction import transaction_response
from portal.api.models import Subscription
from portal.api.search import SearchError, UnsupportedParameters
from portal.api.smart import ClientActor, authorization_server, current_client, requires_scope
from portal.audit.services import AuditAction, record, record_access
from portal.consent.models import Consent
from portal.consent.services import record_disclosure
from portal.core.errors import register_error_renderer
from portal.core.paging import COUNT_CAP
from portal.core.permissions import public
from portal.core.unit_of_work import reads_first
from portal.extensions import csrf, db, limiter
from portal.outcomes.models import OutcomeScore
from portal.patients.models import Patient
from portal.progress.models import ProgressUpdate
from portal.referrals.models import Referral

bp = Blueprint("fhir", __name__)
csrf.exempt(bp)
add_commands(bp.cli)  # flask fhir deliver, flask fhir deliveries


@bp.errorhandler(FhirError)
def fhir_error(exc: FhirError):
    return operation_outcome(exc.status, exc.issues)


@bp.errorhandler(SearchError)
def search_error(exc: SearchError):
    return operation_outcome(exc.status, [issue(exc.code, str(exc), exc.parameter)], _preference_applied())


@bp.errorhandler(UnsupportedParameters)
def unsupported_parameters(exc: UnsupportedParameters):
    return operation_outcome(
        400, [issue("not-supported", message, parameter) for parameter, message in exc.problems], _preference_applied()
    )


@bp.before_request
def negotiate():
    """JSON only (R4 http.html#mime-type): an Accept or _format that rules it out is a 406, before any work."""
    if not json_acceptable(request.accept_mimetypes):
        raise FhirError(406, "This server answers in FHIR JSON only (application/fhir+json).", "not-supported")
    if not json_format(request.args.get("_format")):
        raise FhirError(
            406,
            "This server answers in JSON only (_format json, application/json or application/fhir+json).",
            "not-supported",
            "_format",
        )


def _handling() -> str | None:
    return search.handling_preference(request.headers.getlist("Prefer"))


def _preference_applied() -> dict:
    """RFC 7240: say which handling was applied when the client asked for one."""
    handling = _handling()
    return {"Preference-Applied": f"handling={handling}"} if handling else {}


def _return_minimal() -> bool:
    return any("return=minimal" in header.replace(" ", "") for header in request.headers.getlist("Prefer"))


# Discovery and description: public by design (SMART App Launch 2.0, FHIR RESTful API).


@bp.get("/.well-known/smart-configuration")
@bp.get("/fhir/.well-known/smart-configuration")
@public
def smart_configuration():
    return jsonify(capability.smart_configuration())


@bp.get("/fhir/metadata")
@public
def metadata():
    return fhir_response(capability.capability_statement())


@bp.get("/fhir/openapi.json")
@public
def openapi():
    return jsonify(capability.openapi())


@bp.post("/fhir/auth/token")
@public  # the client authenticates with its signed assertion, checked by the authorization server
@limiter.limit("60 per minute")
@reads_first  # may fetch the client's JWKS URL: no writer lock meanwhile (SmartClientAssertion.validate_jti)
def token():
    response = authorization_server().create_token_response()
    client = g.pop("api_claimed_client", None)
    if response.status_code == 200:
        granted = json.loads(response.get_data()).get("scope", "")
        record(AuditAction.API_TOKEN_ISSUED, actor=_actor(client), obj=client, scope=granted)
    else:
        error = (json.loads(response.get_data() or b"{}") or {}).get("error", "invalid_request")
        detail = {"reason": g.pop("api_refusal_reason")} if "api_refusal_reason" in g else {}
        record_access(
            AuditAction.API_TOKEN_REFUSED, actor=_actor(client) if client else None, obj=client, error=error, **detail
        )
    return response


def _actor(client):
    return ClientActor(client) if client is not None else None


# Referral submission.


def _json_body():
    if not request.mimetype or request.mimetype not in JSON_TYPES:
        raise FhirError(415, "Send the body as application/fhir+json.", "not-supported")
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise
    except BadRequest:
        raise FhirError(400, "The body could not be read.", "structure") from None
    return parse_json(raw)


@bp.post("/fhir")
@requires_scope("system/ServiceRequest.c")
def transaction():
    actor = current_client()
    incoming = intake.read_bundle(_json_body())
    submission = submissions.submit(actor, incoming)
    referral = submission.referral
    extras = queries.referral_extras(actor, [referral.id])[referral.id]
    identifiers = queries.patient_identifiers(actor, [referral.patient_id])[referral.patient_id]
    bundle = transaction_response(
        capability.base_url(),
        incoming,
        created=submission.created,
        patient=resources.patient(referral.patient, identifiers),
        service_request=resources.service_request(referral, extras),
        clinician_id=str(referral.clinician.public_id),
        organization_id=str(actor.organization.public_id),
        minimal=_return_minimal(),
    )
    return fhir_response(bundle, 200)


# Reads and searches. Out of scope and unknown look the same: 404.


def _uuid_or_404(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise FhirError(404, "No such resource.", "not-found") from None


def _found(obj, kind: str):
    if obj is None:
        raise FhirError(404, f"No {kind} with this id for your organization.", "not-found")
    return obj


def _read(resource: dict):
    """A read's answer: the resource, with its version as the ETag."""
    return fhir_response(resource, headers={"ETag": resources.etag(resource)})


def _read_event(obj, patient_public_id, kind: str) -> None:
    record_access(AuditAction.API_READ, actor=current_client(), obj=obj, patient_id=patient_public_id, resource=kind)


def _disclosure(obj, patient_public_id) -> None:
    record_disclosure(current_client(), obj, patient_public_id, via="fhir")


def _extras(referrals: list[Referral]) -> dict:
    return queries.referral_extras(current_client(), [r.id for r in referrals])


@bp.get("/fhir/Task/<id>")
@requires_scope("system/Task.r")
def read_task(id: str):
    referral = _found(queries.referral(current_client(), _uuid_or_404(id)), "Task")
    _read_event(referral, referral.patient.public_id, "Task")
    return _read(resources.task(referral, _extras([referral])[referral.id]))


@bp.get("/fhir/ServiceRequest/<id>")
@requires_scope("system/ServiceRequest.r")
def read_service_request(id: str):
    referral = _found(queries.referral(current_client(), _uuid_or_404(id)), "ServiceRequest")
    _read_event(referral, referral.patient.public_id, "ServiceRequest")
    return _read(resources.service_request(referral, _extras([referral])[referral.id]))


@bp.get("/fhir/Patient/<id>")
@requires_scope("system/Patient.r")
def read_patient(id: str):
    actor = current_client()
    patient = _found(queries.patient(actor, _uuid_or_404(id)), "Patient")
    _read_event(patient, patient.public_id, "Patient")
    return _read(resources.patient(patient, queries.patient_identifiers(actor, [patient.id])[patient.id]))


@bp.get("/fhir/Organization/<id>")
@requires_scope("system/Organization.r")
def read_organization(id: str):
    actor = current_client()
    if id == resources.PRACTICE_ID:
        return _read(resources.practice(capability.STATEMENT_DATE))
    organization = _found(queries.organization(actor, _uuid_or_404(id)), "Organization")
    return _read(resources.organization(organization))


@bp.get("/fhir/Practitioner/<id>")
@requires_scope("system/Practitioner.r")
def read_practitioner(id: str):
    return _read(resources.practitioner(_found(queries.clinician(current_client(), _uuid_or_404(id)), "Practitioner")))


@bp.get("/fhir/PractitionerRole/<id>")
@requires_scope("system/PractitionerRole.r")
def read_practitioner_role(id: str):
    user = _found(queries.clinician(current_client(), _uuid_or_404(id)), "PractitionerRole")
    return _read(resources.practitioner_role(user))


@bp.get("/fhir/Observation/<id>")
@requires_scope("system/Observation.r")
def read_observation(id: str):
    score = _found(queries.score(current_client(), _uuid_or_404(id)), "Observation")
    _disclosure(score, score.referral.patient.public_id)
    return _read(resources.observation(score))


@bp.get("/fhir/DocumentReference/<id>")
@requires_scope("system/DocumentReference.r")
def read_document_reference(id: str):
    update = _found(queries.update(current_client(), _uuid_or_404(id)), "DocumentReference")
    _disclosure(update, update.referral.patient.public_id)
    return _read(resources.document_reference(update))


@bp.get("/fhir/Consent/<id>")
@requires_scope("system/Consent.r")
def read_consent(id: str):
    item = _found(queries.consent(current_client(), _uuid_or_404(id)), "Consent")
    _read_event(item, item.patient.public_id, "Consent")
    return _read(resources.consent(item))


def _search(kind: str, query, model, updated_col, to_resources, audit) -> object:
    """The resource's search parameters as SQL on the scoped query, keyset paging on (last updated, id), and a
    Bundle whose self link lists the parameters applied and whose next link keeps them.

    ``to_resources(page)`` builds the page's resources (loading what they need for the whole page at once)."""
    found = search.parse(kind, SEARCH_PARAMS[kind], list(request.args.items(multi=True)), _handling() == "strict")
    query = query.where(*found.clauses)
    # Bundle.total only when cheap: counted up to COUNT_CAP, left out beyond (a search must not cost
    # more with every referral the organization ever sent).
    counted = db.session.scalar(
        select(func.count()).select_from(
            query.with_only_columns(model.id).order_by(None).limit(COUNT_CAP + 1).subquery()
        )
    )
    total = counted if counted <= COUNT_CAP else None
    if found.cursor:
        after, after_id = found.cursor
        query = query.where(or_(updated_col > after, and_(updated_col == after, model.public_id > after_id)))
    count = found.count
    rows = list(db.session.scalars(query.order_by(updated_col, model.public_id).limit(count + 1))) if count else []
    page, more = rows[:count], len(rows) > count
    for obj in page:
        audit(obj)
    record_access(
        AuditAction.API_READ, actor=current_client(), resource=kind, search=",".join(found.filters), returned=len(page)
    )
    base = capability.base_url()
    self_pairs = found.applied + ([("_cursor", found.cursor_raw)] if found.cursor_raw else [])
    self_url = f"{base}/{kind}" + ("?" + urlencode(self_pairs) if self_pairs else "")
    next_url = None
    if more:
        last = page[-1]
        token = search.encode_cursor(getattr(last, updated_col.key), last.public_id)
        next_url = f"{base}/{kind}?" + urlencode([*found.applied, ("_cursor", token)])
    bundle = resources.searchset(base, to_resources(page), total, self_url, next_url)
    return fhir_response(bundle, headers=_preference_applied(), pretty=found.pretty)


def _each(to_resource):
    return lambda page: [to_resource(obj) for obj in page]


@bp.get("/fhir/Task")
@requires_scope("system/Task.s")
def search_tasks():
    def build(page):
        extras = _extras(page)
        return [resources.task(r, extras[r.id]) for r in page]

    return _search(
        "Task",
        queries.referrals(current_client()),
        Referral,
        Referral.updated_at,
        build,
        lambda r: _read_event(r, r.patient.public_id, "Task"),
    )


@bp.get("/fhir/Patient")
@requires_scope("system/Patient.s")
def search_patients():
    actor = current_client()

    def build(page):
        identifiers = queries.patient_identifiers(actor, [p.id for p in page])
        return [resources.patient(p, identifiers[p.id]) for p in page]

    return _search(
        "Patient",
        queries.patients(actor),
        Patient,
        Patient.updated_at,
        build,
        lambda p: _read_event(p, p.public_id, "Patient"),
    )


@bp.get("/fhir/Observation")
@requires_scope("system/Observation.s")
def search_observations():
    return _search(
        "Observation",
        queries.scores(current_client()),
        OutcomeScore,
        OutcomeScore.updated_at,
        _each(resources.observation),
        lambda s: _disclosure(s, s.referral.patient.public_id),
    )


@bp.get("/fhir/DocumentReference")
@requires_scope("system/DocumentReference.s")
def search_document_references():
    return _search(
        "DocumentReference",
        queries.updates(current_client()),
        ProgressUpdate,
        ProgressUpdate.updated_at,
        _each(resources.document_reference),
        lambda u: _disclosure(u, u.referral.patient.public_id),
    )


@bp.get("/fhir/Consent")
@requires_scope("system/Consent.s")
def search_consents():
    return _search(
        "Consent",
        queries.visible_consents(current_client()),
        Consent,
        Consent.recorded_at,
        _each(resources.consent),
        lambda c: _read_event(c, c.patient.public_id, "Consent"),
    )


# Subscriptions (R4 Subscriptions Backport): the client's own.


@bp.post("/fhir/Subscription")
@requires_scope("system/Subscription.c")
def create_subscription():
    item = subscriptions.create(current_client(), _json_body())
    resource = subscription_resource(item)
    location = f"{capability.base_url()}/Subscription/{item.public_id}/_history/{resource['meta']['versionId']}"
    return fhir_response(resource, 201, {"Location": location, "ETag": resources.etag(resource)})


@bp.get("/fhir/Subscription/<id>")
@requires_scope("system/Subscription.r")
def read_subscription(id: str):
    return _read(
        subscription_resource(_found(queries.subscription(current_client(), _uuid_or_404(id)), "Subscription"))
    )


@bp.get("/fhir/Subscription")
@requires_scope("system/Subscription.s")
def search_subscriptions():
    return _search(
        "Subscription",
        queries.subscriptions(current_client()),
        Subscription,
        Subscription.updated_at,
        _each(subscription_resource),
        lambda s: None,
    )


@bp.delete("/fhir/Subscription/<id>")
@requires_scope("system/Subscription.d")
def delete_subscription(id: str):
    actor = current_client()
    subscriptions.unsubscribe(actor, _found(queries.subscription(actor, _uuid_or_404(id)), "Subscription"))
    return "", 204


@bp.get("/fhir/Subscription/<id>/$status")
@requires_scope("system/Subscription.r")
def subscription_status(id: str):
    item = _found(queries.subscription(current_client(), _uuid_or_404(id)), "Subscription")
    return fhir_response(status_bundle(capability.base_url(), item, item.events_since_start))


@bp.app_context_processor
def ehr_details():
    """For the staff referral page (templates/intake/detail.html): what an EHR sent beyond the form. A template
    global, so referrals need not import the API (the API sits above them)."""
    return {"ehr_details": queries.staff_view}


@bp.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.record_once
def _init_authorization_server(state):
    from portal.api.smart import init_app

    init_app(state.app)
    register_error_renderer("/fhir", http_outcome)  # FHIR clients get an OperationOutcome for every error
