"""The search parameters of each searchable resource, as SQL over the portal's own columns.

One table per resource type: the views apply it (``portal/api/search.py`` reads the request), the
CapabilityStatement and the OpenAPI description list it, so what is advertised is what works. Every
condition is a plain predicate on the resource's own table (subqueries on patients and referrals,
never a join the scoped query might lack), added with ``where`` to the scoped query, so it narrows
what the organization and the consent policy already allow and can never widen it.
"""

from flask import current_app
from sqlalchemy import ColumnElement, false, func, select, true

from portal.api.fhir import DATA_CLASS, INSTRUMENT, LOINC, OBSERVATION_CATEGORY, PATIENT_IDENTIFIER, PHASE, REFERENCE
from portal.api.fhir.resources import INSTRUMENT_LOINC
from portal.api.models import PatientIdentifier, Subscription, SubscriptionStatus
from portal.api.search import Param, any_of, coded, day_filter, fhir_id, instant_filter, parse_uuid, reference, token
from portal.api.smart import current_client
from portal.consent.models import Consent, ConsentStatus
from portal.core.phi import blind_match
from portal.core.time import practice_zone
from portal.outcomes.models import Instrument, OutcomeScore, Phase
from portal.patients.models import Patient
from portal.progress.models import UPDATE_CATEGORIES, ProgressUpdate
from portal.referrals.lifecycle import FHIR_TASK_STATUS
from portal.referrals.models import Referral

TASK_STATUS = "http://hl7.org/fhir/task-status"
OBSERVATION_STATUS = "http://hl7.org/fhir/observation-status"
DOCUMENT_REFERENCE_STATUS = "http://hl7.org/fhir/document-reference-status"
CONSENT_STATE = "http://hl7.org/fhir/consent-state-codes"
# The required bindings of each status element (FHIR R4 4.0.1): other codes are a 400, these match or not.
TASK_STATUS_CODES = {
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
}
OBSERVATION_STATUS_CODES = {
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
}
DOCUMENT_REFERENCE_STATUS_CODES = {"current", "superseded", "entered-in-error"}
CONSENT_STATE_CODES = {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}

# The types each reference parameter may point to in FHIR R4 (another type is a 400; a type we do
# not serve simply matches nothing).
OBSERVATION_SUBJECT = {"Patient", "Group", "Device", "Location"}
OBSERVATION_BASED_ON = {
    "CarePlan",
    "DeviceRequest",
    "ImmunizationRecommendation",
    "MedicationRequest",
    "NutritionOrder",
    "ServiceRequest",
}
DOCUMENT_REFERENCE_SUBJECT = {"Patient", "Practitioner", "Group", "Device"}


def _base() -> str:
    return current_app.config["PORTAL_BASE_URL"].rstrip("/") + "/fhir"


def _ids(name: str, values: list[str], column) -> ColumnElement[bool]:
    """_id: the resource's own public id."""
    ids = {i for i in (fhir_id(name, v) for v in values) if i is not None}
    return column.in_(sorted(ids)) if ids else false()


def _referenced(name: str, values: list[str], targets: set[str] | None, served: str) -> list:
    """The UUIDs of the ``served`` resources the values point to (ours, of the served type)."""
    found = set()
    for value in values:
        ref = reference(name, value, targets, _base())
        if ref.uuid is not None and not ref.foreign and ref.type in (None, served):
            found.add(ref.uuid)
    return sorted(found)


def _patients(patient_column, targets: set[str] | None):
    """patient / subject: Patient/<public_id> or a bare id. ``patient_column``: the row's patient key."""

    def clause(name: str, values: list[str]) -> ColumnElement[bool]:
        ids = _referenced(name, values, targets, "Patient")
        return patient_column.in_(select(Patient.id).where(Patient.public_id.in_(ids))) if ids else false()

    return clause


def _score_patients(targets: set[str] | None):
    """An outcome score's patient is its episode's (referral's) patient."""

    def clause(name: str, values: list[str]) -> ColumnElement[bool]:
        ids = _referenced(name, values, targets, "Patient")
        if not ids:
            return false()
        patients = select(Patient.id).where(Patient.public_id.in_(ids))
        return OutcomeScore.referral_id.in_(select(Referral.id).where(Referral.patient_id.in_(patients)))

    return clause


def _referrals(referral_column, targets: set[str]):
    def clause(name: str, values: list[str]) -> ColumnElement[bool]:
        ids = _referenced(name, values, targets, "ServiceRequest")
        return referral_column.in_(select(Referral.id).where(Referral.public_id.in_(ids))) if ids else false()

    return clause


def _last_updated(column):
    return lambda name, values: instant_filter(name, column, values)


def _id(column):
    return lambda name, values: _ids(name, values, column)


ID_DOC = "The resource id; several ids separated by commas match any of them."
LAST_UPDATED_DOC = (
    "meta.lastUpdated. Prefixes eq, gt, ge, lt, le; a date (a UTC day), year, month or a dateTime "
    "with time zone. Repeat to bound both ends."
)
REFERENCE_SYNTAX = "Patient/[id], a bare [id] or [base]/Patient/[id]; the id is the one in the resources' references"


# --- Task -----------------------------------------------------------------------------------------


def _task_identifier(name: str, values: list[str]) -> ColumnElement[bool]:
    clauses = []
    for value in values:
        item = token(name, value)
        if item.system in (None, REFERENCE):
            clauses.append(true() if item.code is None else Referral.reference == item.code)
    return any_of(clauses)


def _task_status(name: str, values: list[str]) -> ColumnElement[bool]:
    by_code: dict[str, list] = {}
    for status, code in FHIR_TASK_STATUS.items():
        by_code.setdefault(code, []).append(status)
    codings = [(TASK_STATUS, code, Referral.status.in_(statuses)) for code, statuses in by_code.items()]
    return coded(name, values, codings, (TASK_STATUS, TASK_STATUS_CODES))


TASK = [
    Param("_id", "token", ID_DOC, _id(Referral.public_id)),
    Param("_lastUpdated", "date", LAST_UPDATED_DOC, _last_updated(Referral.updated_at)),
    Param(
        "identifier",
        "token",
        f"The referral's reference number (RB-...), system {REFERENCE}: system|value or value.",
        _task_identifier,
    ),
    Param("patient", "reference", f"Task.for: {REFERENCE_SYNTAX}.", _patients(Referral.patient_id, {"Patient"})),
    Param(
        "subject",
        "reference",
        f"Task.for (same as patient here): {REFERENCE_SYNTAX}.",
        _patients(Referral.patient_id, None),
    ),
    Param(
        "status",
        "token",
        f"Task.status ({', '.join(dict.fromkeys(FHIR_TASK_STATUS.values()))}: the referral's "
        f"status maps onto these), system {TASK_STATUS} optional. Another code of the Task status value set "
        "matches nothing; a code outside it is a 400.",
        _task_status,
    ),
]


# --- Observation ----------------------------------------------------------------------------------


def _observation_code(name: str, values: list[str]) -> ColumnElement[bool]:
    clauses = []
    for value in values:
        item = token(name, value)
        if item.system in (None, INSTRUMENT):
            clauses.append(true() if item.code is None else Instrument.code == item.code)
        if item.system in (None, LOINC):
            codes = sorted(c for c, (loinc, _display) in INSTRUMENT_LOINC.items() if item.code in (None, loinc))
            if codes:
                clauses.append(Instrument.code.in_(codes))
    if not clauses:
        return false()
    return OutcomeScore.instrument_id.in_(select(Instrument.id).where(any_of(clauses)))


def _observation_status(name: str, values: list[str]) -> ColumnElement[bool]:
    return coded(name, values, [(OBSERVATION_STATUS, "final", true())], (OBSERVATION_STATUS, OBSERVATION_STATUS_CODES))


def _observation_category(name: str, values: list[str]) -> ColumnElement[bool]:
    codings = [(OBSERVATION_CATEGORY, "survey", true())]
    codings += [(PHASE, phase.value, OutcomeScore.phase == phase) for phase in Phase]
    return coded(name, values, codings)


def _observation_date(name: str, values: list[str]) -> ColumnElement[bool]:
    return day_filter(name, OutcomeScore.measured_on, values, practice_zone())


OBSERVATION = [
    Param("_id", "token", ID_DOC, _id(OutcomeScore.public_id)),
    Param("_lastUpdated", "date", LAST_UPDATED_DOC, _last_updated(OutcomeScore.updated_at)),
    Param("patient", "reference", f"Observation.subject: {REFERENCE_SYNTAX}.", _score_patients({"Patient"})),
    Param(
        "subject",
        "reference",
        f"Observation.subject (same as patient here): {REFERENCE_SYNTAX}.",
        _score_patients(OBSERVATION_SUBJECT),
    ),
    Param(
        "status",
        "token",
        "Observation.status: always final here. Another code of the Observation status value "
        "set matches nothing; a code outside it is a 400.",
        _observation_status,
    ),
    Param(
        "code",
        "token",
        "The instrument: "
        + ", ".join(f"{LOINC}|{loinc} ({code})" for code, (loinc, _d) in INSTRUMENT_LOINC.items())
        + f" where the instrument has a LOINC code of its own, or {INSTRUMENT}|[instrument code] (NPRS, ODI, LEFS, "
        "...); system|code, code or system|.",
        _observation_code,
    ),
    Param(
        "date",
        "date",
        "Observation.effectiveDateTime, the practice's calendar day the score was measured. "
        "Prefixes eq, gt, ge, lt, le as for _lastUpdated, with the day as a range: a date is compared as a "
        "calendar date, a dateTime with time zone against the practice's day.",
        _observation_date,
    ),
    Param(
        "based-on",
        "reference",
        "The referral: ServiceRequest/[id] or a bare [id] (the Task's id).",
        _referrals(OutcomeScore.referral_id, OBSERVATION_BASED_ON),
    ),
    Param(
        "category",
        "token",
        f"{OBSERVATION_CATEGORY}|survey (every score) or the phase, {PHASE}|intake, interim or discharge.",
        _observation_category,
    ),
]


# --- DocumentReference ----------------------------------------------------------------------------


def _document_status(name: str, values: list[str]) -> ColumnElement[bool]:
    return coded(
        name,
        values,
        [(DOCUMENT_REFERENCE_STATUS, "current", true())],
        (DOCUMENT_REFERENCE_STATUS, DOCUMENT_REFERENCE_STATUS_CODES),
    )


def _document_category(name: str, values: list[str]) -> ColumnElement[bool]:
    return coded(name, values, [(DATA_CLASS, c.value, ProgressUpdate.category == c) for c in UPDATE_CATEGORIES])


# DocumentReference.date is the release time (the update's last change before release, if none recorded).
DOCUMENT_DATE = func.coalesce(ProgressUpdate.released_at, ProgressUpdate.updated_at)

DOCUMENT_REFERENCE = [
    Param("_id", "token", ID_DOC, _id(ProgressUpdate.public_id)),
    Param("_lastUpdated", "date", LAST_UPDATED_DOC, _last_updated(ProgressUpdate.updated_at)),
    Param(
        "patient",
        "reference",
        f"DocumentReference.subject: {REFERENCE_SYNTAX}.",
        _patients(ProgressUpdate.patient_id, {"Patient"}),
    ),
    Param(
        "subject",
        "reference",
        f"DocumentReference.subject (same as patient here): {REFERENCE_SYNTAX}.",
        _patients(ProgressUpdate.patient_id, DOCUMENT_REFERENCE_SUBJECT),
    ),
    Param(
        "status",
        "token",
        "DocumentReference.status: always current here. Another code of the value set "
        "matches nothing; a code outside it is a 400.",
        _document_status,
    ),
    Param(
        "date",
        "date",
        "DocumentReference.date, the instant the update was released. Prefixes and values as for _lastUpdated.",
        lambda name, values: instant_filter(name, DOCUMENT_DATE, values),
    ),
    Param(
        "category", "token", f"The data class, {DATA_CLASS}|progress_notes or discharge_summary.", _document_category
    ),
]


# --- Consent --------------------------------------------------------------------------------------


def _consent_status(name: str, values: list[str]) -> ColumnElement[bool]:
    codings = [
        (CONSENT_STATE, "active", Consent.status == ConsentStatus.ACTIVE),
        (CONSENT_STATE, "inactive", Consent.status != ConsentStatus.ACTIVE),
    ]
    return coded(name, values, codings, (CONSENT_STATE, CONSENT_STATE_CODES))


CONSENT = [
    Param("_id", "token", ID_DOC, _id(Consent.public_id)),
    Param(
        "_lastUpdated",
        "date",
        LAST_UPDATED_DOC + " (For a Consent, when it was recorded.)",
        _last_updated(Consent.recorded_at),
    ),
    Param("patient", "reference", f"Consent.patient: {REFERENCE_SYNTAX}.", _patients(Consent.patient_id, {"Patient"})),
    Param(
        "status",
        "token",
        "Consent.status: active (only consents in effect are served, so every one is active). "
        "Another code of the value set matches nothing; a code outside it is a 400.",
        _consent_status,
    ),
]

# --- Patient --------------------------------------------------------------------------------------


def _patient_identifier(name: str, values: list[str]) -> ColumnElement[bool]:
    """The portal's patient id (system PATIENT_IDENTIFIER) or an identifier the client's own organization's EHR
    sent (its MRN: system|value, matched through the blind index; another organization's never match)."""
    organization_id = current_client().organization_id
    clauses = []
    for value in values:
        item = token(name, value)
        if item.code is None:
            if item.system == PATIENT_IDENTIFIER:
                clauses.append(true())
            elif item.system:
                clauses.append(
                    Patient.id.in_(
                        select(PatientIdentifier.patient_id).where(
                            PatientIdentifier.organization_id == organization_id,
                            PatientIdentifier.system == item.system,
                        )
                    )
                )
            continue
        if item.system in (None, PATIENT_IDENTIFIER) and (own := parse_uuid(item.code)) is not None:
            clauses.append(Patient.public_id == own)
        if item.system != PATIENT_IDENTIFIER:
            sent = select(PatientIdentifier.patient_id).where(
                PatientIdentifier.organization_id == organization_id,
                blind_match(PatientIdentifier.value_bidx, item.code),
            )
            if item.system is not None:
                sent = sent.where(PatientIdentifier.system == item.system)
            clauses.append(Patient.id.in_(sent))
    return any_of(clauses)


PATIENT = [
    Param("_id", "token", ID_DOC, _id(Patient.public_id)),
    Param("_lastUpdated", "date", LAST_UPDATED_DOC, _last_updated(Patient.updated_at)),
    Param(
        "identifier",
        "token",
        f"The patient's identifiers: the MRN your EHR sent (system|value, or value), or the portal's id (system "
        f"{PATIENT_IDENTIFIER}). Identifiers sent by another organization never match.",
        _patient_identifier,
    ),
]


# --- Subscription ---------------------------------------------------------------------------------

SUBSCRIPTION_STATUS = "http://hl7.org/fhir/subscription-status"


def _subscription_status(name: str, values: list[str]) -> ColumnElement[bool]:
    codings = [(SUBSCRIPTION_STATUS, s.value, Subscription.status == s) for s in SubscriptionStatus]
    return coded(name, values, codings, (SUBSCRIPTION_STATUS, {s.value for s in SubscriptionStatus}))


SUBSCRIPTION = [
    Param("_id", "token", ID_DOC, _id(Subscription.public_id)),
    Param("_lastUpdated", "date", LAST_UPDATED_DOC, _last_updated(Subscription.updated_at)),
    Param("status", "token", "Subscription.status: requested, active, error or off.", _subscription_status),
]

# resource type -> its search parameters by name (besides _count, _cursor, _format and _pretty, which every
# search takes: portal/api/search.py CONTROL)
SEARCH_PARAMS: dict[str, dict[str, Param]] = {
    kind: {p.name: p for p in params}
    for kind, params in (
        ("Task", TASK),
        ("Observation", OBSERVATION),
        ("DocumentReference", DOCUMENT_REFERENCE),
        ("Consent", CONSENT),
        ("Patient", PATIENT),
        ("Subscription", SUBSCRIPTION),
    )
}
