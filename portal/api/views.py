"""The FHIR API under /fhir and SMART discovery. Bearer tokens, not sessions: the blueprint is CSRF-exempt.

Views load through the scoped queries (another organization's id is a 404), audit with the client as
actor, and respond with FHIR JSON; the request commits once, as everywhere.
"""

import json
import uuid
from urllib.parse import urlencode

from flask import Blueprint, g, jsonify, request
from sqlalchemy import and_, func, or_, select
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from portal.accounts.queries import active_clinician_by_npi
from portal.api import queries, search
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
from portal.api.fhir.searchparams import SEARCH_PARAMS
from portal.api.search import SearchError, UnsupportedParameters
from portal.api.smart import ClientActor, authorization_server, current_client, requires_scope
from portal.audit.services import AuditAction, record, record_access
from portal.consent.models import Consent
from portal.consent.services import record_disclosure
from portal.core.errors import register_error_renderer
from portal.core.paging import COUNT_CAP
from portal.core.permissions import public
from portal.core.unit_of_work import reads_first
from portal.core.uploads import UploadError
from portal.extensions import csrf, db, limiter
from portal.outcomes.models import OutcomeScore
from portal.progress.models import ProgressUpdate
from portal.referrals import services
from portal.referrals.forms import ReferralForm
from portal.referrals.models import Referral

bp = Blueprint("fhir", __name__)
csrf.exempt(bp)


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


def _handling() -> str | None:
    return search.handling_preference(request.headers.getlist("Prefer"))


def _preference_applied() -> dict:
    """RFC 7240: say which handling was applied when the client asked for one."""
    handling = _handling()
    return {"Preference-Applied": f"handling={handling}"} if handling else {}


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
        record_access(AuditAction.API_TOKEN_REFUSED, actor=_actor(client) if client else None, obj=client, error=error)
    return response


def _actor(client):
    return ClientActor(client) if client is not None else None


# Referral submission.


@bp.post("/fhir")
@requires_scope("system/ServiceRequest.write")
def transaction():
    actor = current_client()
    found = intake.split_bundle(_json_body())
    npi = intake.requester_npi(found)
    clinician = active_clinician_by_npi(actor.organization_id, npi)
    if clinician is None:
        raise FhirError(
            422,
            "No active clinician account of your organization has this NPI. An administrator of "
            "your organization records the NPI on the clinician's account.",
            "processing",
            "Practitioner.identifier",
        )
    data = intake.form_data(found)
    data.update({"clinician": str(clinician.public_id), "clinician_npi": npi})
    form = ReferralForm(formdata=data, meta={"csrf": False})
    form.clinician.choices = [(str(clinician.public_id), clinician.full_name)]
    if not form.validate():
        raise FhirError(422, "", issues=intake.form_issues(form))
    try:
        referral = services.submit_referral(actor, form.submission(), intake.attachments(found))
    except UploadError as exc:
        raise FhirError(422, str(exc), "processing", "DocumentReference.content.attachment") from None
    except services.ReferralError as exc:
        raise FhirError(422, str(exc), "processing") from None
    location = f"{capability.base_url()}/Task/{referral.public_id}"
    return fhir_response(resources.task(referral), 201, {"Location": location})


def _json_body():
    if not request.mimetype or request.mimetype not in ("application/fhir+json", "application/json"):
        raise FhirError(415, "Send the Bundle as application/fhir+json.", "not-supported")
    try:
        return json.loads(request.get_data(cache=False) or b"null")
    except RequestEntityTooLarge:
        raise
    except (ValueError, UnicodeDecodeError, BadRequest):
        raise FhirError(400, "The body is not valid JSON.", "structure") from None


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


def _read_event(obj, patient_public_id, kind: str) -> None:
    record_access(AuditAction.API_READ, actor=current_client(), obj=obj, patient_id=patient_public_id, resource=kind)


def _disclosure(obj, patient_public_id) -> None:
    record_disclosure(current_client(), obj, patient_public_id, via="fhir")


@bp.get("/fhir/Task/<id>")
@requires_scope("system/Task.read")
def read_task(id: str):
    referral = _found(queries.referral(current_client(), _uuid_or_404(id)), "Task")
    _read_event(referral, referral.patient.public_id, "Task")
    return fhir_response(resources.task(referral))


@bp.get("/fhir/ServiceRequest/<id>")
@requires_scope("system/ServiceRequest.read")
def read_service_request(id: str):
    referral = _found(queries.referral(current_client(), _uuid_or_404(id)), "ServiceRequest")
    _read_event(referral, referral.patient.public_id, "ServiceRequest")
    return fhir_response(resources.service_request(referral))


@bp.get("/fhir/Observation/<id>")
@requires_scope("system/Observation.read")
def read_observation(id: str):
    score = _found(queries.score(current_client(), _uuid_or_404(id)), "Observation")
    _disclosure(score, score.referral.patient.public_id)
    return fhir_response(resources.observation(score))


@bp.get("/fhir/DocumentReference/<id>")
@requires_scope("system/DocumentReference.read")
def read_document_reference(id: str):
    update = _found(queries.update(current_client(), _uuid_or_404(id)), "DocumentReference")
    _disclosure(update, update.referral.patient.public_id)
    return fhir_response(resources.document_reference(update))


@bp.get("/fhir/Consent/<id>")
@requires_scope("system/Consent.read")
def read_consent(id: str):
    item = _found(queries.consent(current_client(), _uuid_or_404(id)), "Consent")
    _read_event(item, item.patient.public_id, "Consent")
    return fhir_response(resources.consent(item))


def _search(kind: str, query, model, updated_col, to_resource, audit) -> object:
    """The resource's search parameters as SQL on the scoped query, keyset paging on (last updated, id), and a
    Bundle whose self link lists the parameters applied and whose next link keeps them."""
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
    bundle = resources.searchset(base, [to_resource(o) for o in page], total, self_url, next_url)
    return fhir_response(bundle, headers=_preference_applied(), pretty=found.pretty)


@bp.get("/fhir/Task")
@requires_scope("system/Task.read")
def search_tasks():
    actor = current_client()
    return _search(
        "Task",
        queries.referrals(actor),
        Referral,
        Referral.updated_at,
        resources.task,
        lambda r: _read_event(r, r.patient.public_id, "Task"),
    )


@bp.get("/fhir/Observation")
@requires_scope("system/Observation.read")
def search_observations():
    actor = current_client()
    return _search(
        "Observation",
        queries.scores(actor),
        OutcomeScore,
        OutcomeScore.updated_at,
        resources.observation,
        lambda s: _disclosure(s, s.referral.patient.public_id),
    )


@bp.get("/fhir/DocumentReference")
@requires_scope("system/DocumentReference.read")
def search_document_references():
    actor = current_client()
    return _search(
        "DocumentReference",
        queries.updates(actor),
        ProgressUpdate,
        ProgressUpdate.updated_at,
        resources.document_reference,
        lambda u: _disclosure(u, u.referral.patient.public_id),
    )


@bp.get("/fhir/Consent")
@requires_scope("system/Consent.read")
def search_consents():
    actor = current_client()
    return _search(
        "Consent",
        queries.visible_consents(actor),
        Consent,
        Consent.recorded_at,
        resources.consent,
        lambda c: _read_event(c, c.patient.public_id, "Consent"),
    )


@bp.after_request
def no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.record_once
def _init_authorization_server(state):
    from portal.api.smart import init_app

    init_app(state.app)
    register_error_renderer("/fhir", http_outcome)  # FHIR clients get an OperationOutcome for every error
