"""The answer to a referral transaction: a transaction-response Bundle, one entry per entry sent, in order.

Each entry's ``response`` says what became of it (R4 http.html#transaction-response): the Patient and the
ServiceRequest ``201 Created`` with their Location, ETag and lastModified (``200 OK`` when the order had been
submitted before and nothing was created: conditional create); the requester ``200 OK`` with the Location of
the clinician it matched; documents and kept resources ``201 Created`` (stored with the referral, not served
as resources of their own); ignored entries ``200 OK`` with a warning. ``Prefer: return=minimal`` leaves out
the resources; by default the Patient and the ServiceRequest come back as stored.
"""

from portal.api.fhir import issue
from portal.api.fhir.intake import Referral as Incoming
from portal.api.fhir.resources import etag


def _response(status: str, resource: dict | None = None, location: str | None = None, notes=()) -> dict:
    response: dict = {"status": status}
    if resource is not None:
        response["location"] = f"{resource['resourceType']}/{resource['id']}/_history/{resource['meta']['versionId']}"
        response["etag"] = etag(resource)
        response["lastModified"] = resource["meta"]["lastUpdated"]
    elif location:
        response["location"] = location
    if notes:
        response["outcome"] = {"resourceType": "OperationOutcome", "issue": list(notes)}
    return response


def transaction_response(
    base: str,
    incoming: Incoming,
    *,
    created: bool,
    patient: dict,
    service_request: dict,
    clinician_id: str,
    organization_id: str,
    minimal: bool = False,
) -> dict:
    done = "201 Created" if created else "200 OK"
    entries = []
    for entry in incoming.entries:
        resource = None
        notes = list(entry.notes)
        if entry.role == "patient":
            resource = patient
            response = _response(done, patient, notes=notes)
        elif entry.role == "service-request":
            resource = service_request
            notes.append(
                issue(
                    "informational",
                    f"Follow the referral at Task/{service_request['id']} (the Task has the ServiceRequest's id)."
                    + ("" if created else " This order was submitted before: nothing new was created."),
                    severity="information",
                )
            )
            response = _response(done, service_request, notes=notes)
        elif entry.role == "requester":
            notes.append(
                issue(
                    "informational",
                    "Matched by NPI to the organization's clinician; nothing created.",
                    severity="information",
                )
            )
            response = _response("200 OK", location=f"{entry.type}/{clinician_id}", notes=notes)
        elif entry.role == "party" and entry.type == "Organization":
            notes.append(
                issue(
                    "informational",
                    f"Organizations are not created: the client's organization is Organization/{organization_id}, "
                    "the practice Organization/practice.",
                    severity="information",
                )
            )
            response = _response("200 OK", notes=notes)
        elif entry.role == "document":
            notes.append(
                issue(
                    "informational",
                    "Kept as an attachment of the referral for the practice's staff.",
                    severity="information",
                )
            )
            response = _response(done, notes=notes)
        elif entry.role == "kept":
            response = _response(done, notes=notes)
        else:  # ignored, or a party not used
            response = _response("200 OK", notes=notes)
        item: dict = {}
        if resource is not None and not minimal:
            item = {"fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}", "resource": resource}
        entries.append({**item, "response": response})
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
