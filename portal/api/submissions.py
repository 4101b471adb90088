"""Submit a referral from an EHR's transaction Bundle, at most once per order identifier.

Conditional create (R4 http.html#ccreate, on the ServiceRequest's identifier): a Bundle whose ServiceRequest
carries an identifier (system and value) the organization already submitted returns that first referral and
creates nothing, whether the client sent ``ifNoneExist`` or not; a retry after a lost answer can never make a
second referral. Two identical Bundles at the same moment are decided by the unique constraint on
``api_order_identifiers``: the claim is inserted first, in a savepoint, and the loser's insert fails (on
PostgreSQL it waits for the winner's commit), so it answers with the winner's referral.

Add and flush; the request commits (a refused submission leaves nothing, not even its claim).
"""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.accounts.queries import active_clinician_by_npi
from portal.api.fhir import FhirError
from portal.api.fhir.intake import Referral as IncomingReferral
from portal.api.fhir.intake import form_issues
from portal.api.forms import ApiReferralForm
from portal.api.models import OrderIdentifier, PatientIdentifier, ReferralDetail
from portal.audit.services import AuditAction, record
from portal.core.phi import blind_match
from portal.core.uploads import UploadError
from portal.extensions import db
from portal.referrals import services
from portal.referrals.models import Referral


@dataclass(frozen=True)
class Submission:
    referral: Referral
    created: bool  # False: a replay of an order already submitted (conditional create matched)


def existing_referral(actor, keys: list[tuple[str, str]]) -> Referral | None:
    """The organization's referral for any of these order identifiers (system, value); 412 if they name two."""
    found = set()
    for system, value in keys:
        claim = db.session.scalar(
            select(OrderIdentifier).where(
                OrderIdentifier.organization_id == actor.organization_id,
                OrderIdentifier.system == system,
                blind_match(OrderIdentifier.value_bidx, value),
                OrderIdentifier.referral_id.is_not(None),
            )
        )
        if claim is not None:
            found.add(claim.referral_id)
    if len(found) > 1:
        raise FhirError(
            412,
            "The ServiceRequest's identifiers match more than one referral already submitted.",
            "duplicate",
            "ServiceRequest.identifier",
        )
    if not found:
        return None
    return db.session.scalar(
        select(Referral).where(Referral.id == found.pop(), Referral.organization_id == actor.organization_id)
    )


def submit(actor, incoming: IncomingReferral) -> Submission:
    """The referral for this Bundle: the one already submitted for its order, or a new one."""
    keys = [(i["system"], i["value"]) for i in incoming.order_identifiers]
    previous = existing_referral(actor, keys) if keys else None
    if previous is not None:
        return _replayed(actor, previous)

    clinician = active_clinician_by_npi(actor.organization_id, incoming.requester_npi)
    if clinician is None:
        raise FhirError(
            422,
            "No active clinician account of your organization has this NPI. An administrator of "
            "your organization records the NPI on the clinician's account.",
            "processing",
            f"{incoming.requester_type}.identifier",
        )
    data = incoming.form.copy()
    data.update({"clinician": str(clinician.public_id), "clinician_npi": incoming.requester_npi})
    form = ApiReferralForm(formdata=data, meta={"csrf": False})
    form.clinician.choices = [(str(clinician.public_id), clinician.full_name)]
    if not form.validate():
        raise FhirError(422, "", issues=form_issues(form))

    claims = []
    if keys:
        try:
            with db.session.begin_nested():  # the claim first: a concurrent twin fails here, having done nothing
                for ident in incoming.order_identifiers:
                    claim = OrderIdentifier(
                        organization_id=actor.organization_id, system=ident["system"], type_code=ident["type"]
                    )
                    claim.value = ident["value"]
                    db.session.add(claim)
                    claims.append(claim)
                db.session.flush()
        except IntegrityError:
            winner = existing_referral(actor, keys)
            if winner is None:  # the twin's transaction is still writing (SQLite never gets here: one writer)
                raise FhirError(
                    409, "The same order is being submitted by another request; try again.", "conflict"
                ) from None
            return _replayed(actor, winner)

    try:
        referral = services.submit_referral(actor, form.submission(), incoming.files)
    except UploadError as exc:
        raise FhirError(422, str(exc), "processing", "DocumentReference.content.attachment") from None
    except services.ReferralError as exc:
        raise FhirError(422, str(exc), "processing") from None
    for claim in claims:
        claim.referral_id = referral.id
    for ident in incoming.patient_identifiers:
        kept = PatientIdentifier(
            patient_id=referral.patient_id, organization_id=actor.organization_id, system=ident["system"]
        )
        kept.type_code = ident["type"]
        kept.value = ident["value"]
        db.session.add(kept)
    detail = ReferralDetail(referral_id=referral.id, organization_id=actor.organization_id, client_id=actor.client.id)
    detail.content = incoming.details
    db.session.add(detail)
    db.session.flush()
    return Submission(referral, created=True)


def _replayed(actor, referral: Referral) -> Submission:
    record(AuditAction.API_SUBMISSION_REPLAYED, actor=actor, obj=referral, patient_id=referral.patient.public_id)
    return Submission(referral, created=False)
