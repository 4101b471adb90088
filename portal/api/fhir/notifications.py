"""Subscriptions in the style of the FHIR R4 Subscriptions R5 Backport IG (STU 1.1): the Subscription resource,
its status (a Parameters resource, profile backport-subscription-status-r4) and notification Bundles (type
history, profile backport-subscription-notification-r4). http://hl7.org/fhir/uv/subscriptions-backport/
"""

import uuid
from datetime import datetime

from portal.api.fhir import FHIR_JSON
from portal.api.fhir.resources import (
    NOTIFICATION_PROFILE,
    STATUS_PROFILE,
    SUBSCRIPTION_PROFILE,
    instant,
    version_stamp,
)

BACKPORT_EXTENSION = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
FILTER_CRITERIA = BACKPORT_EXTENSION + "backport-filter-criteria"
PAYLOAD_CONTENT = BACKPORT_EXTENSION + "backport-payload-content"
TIMEOUT = BACKPORT_EXTENSION + "backport-timeout"
HEARTBEAT_PERIOD = BACKPORT_EXTENSION + "backport-heartbeat-period"
MAX_COUNT = BACKPORT_EXTENSION + "backport-max-count"
TOPIC_CANONICAL = BACKPORT_EXTENSION + "capabilitystatement-subscriptiontopic-canonical"


def subscription(item) -> dict:
    """The Subscription as stored; channel.header is never echoed (it carries the receiver's credentials)."""
    criteria_extension = []
    if item.filter_status:
        criteria_extension = [{"url": FILTER_CRITERIA, "valueString": f"Task?status={item.filter_status}"}]
    resource = {
        "resourceType": "Subscription",
        "id": str(item.public_id),
        "meta": {
            "versionId": version_stamp(item.updated_at),
            "lastUpdated": instant(item.updated_at),
            "profile": [SUBSCRIPTION_PROFILE],
        },
        "status": item.status.value,
        "reason": item.reason,
        "criteria": item.topic,
        "channel": {
            "extension": [{"url": TIMEOUT, "valueUnsignedInt": item.timeout_seconds}],
            "type": "rest-hook",
            "endpoint": item.endpoint,
            "payload": FHIR_JSON,
            "_payload": {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": item.payload.value}]},
        },
    }
    if criteria_extension:
        resource["_criteria"] = {"extension": criteria_extension}
    if item.end_at:
        resource["end"] = instant(item.end_at)
    if item.last_error:
        resource["error"] = f"The last notification failed: {item.last_error}."
    return resource


def status_parameters(
    base: str,
    item,
    kind: str,
    *,
    events_since_start: int,
    event: dict | None = None,
    parameters_id: str | None = None,
) -> dict:
    """A SubscriptionStatus as R4 Parameters. ``event``: {number, timestamp, focus} of a notification-event."""
    parameter = [
        {"name": "subscription", "valueReference": {"reference": f"{base}/Subscription/{item.public_id}"}},
        {"name": "topic", "valueCanonical": item.topic},
        {"name": "status", "valueCode": item.status.value},
        {"name": "type", "valueCode": kind},
        {"name": "events-since-subscription-start", "valueString": str(events_since_start)},
    ]
    if event is not None:
        part = [
            {"name": "event-number", "valueString": str(event["number"])},
            {"name": "timestamp", "valueInstant": instant(event["timestamp"])},
        ]
        if event.get("focus"):
            part.append({"name": "focus", "valueReference": {"reference": event["focus"]}})
        parameter.append({"name": "notification-event", "part": part})
    if item.last_error:
        parameter.append(
            {"name": "error", "valueCodeableConcept": {"text": f"The last notification failed: {item.last_error}."}}
        )
    return {
        "resourceType": "Parameters",
        "id": parameters_id or str(uuid.uuid4()),
        "meta": {"profile": [STATUS_PROFILE]},
        "parameter": parameter,
    }


def status_bundle(base: str, item, events_since_start: int) -> dict:
    """$status: a searchset Bundle holding the subscription's status."""
    status = status_parameters(base, item, "query-status", events_since_start=events_since_start)
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "link": [{"relation": "self", "url": f"{base}/Subscription/{item.public_id}/$status"}],
        "entry": [{"fullUrl": f"urn:uuid:{status['id']}", "resource": status, "search": {"mode": "match"}}],
    }


def notification_bundle(
    base: str,
    item,
    *,
    bundle_id: str,
    kind: str,
    event_number: int,
    occurred_at: datetime,
    now: datetime,
    task: dict | None,
) -> dict:
    """A notification: the same id and event number on every retry, so a receiver can drop repeats.

    ``task``: the Task now (full-resource payload), or None (id-only: the focus reference alone; empty: neither)."""
    focus = f"{base}/Task/{task['id']}" if task is not None and item.payload.value != "empty" else None
    event = None
    if kind == "event-notification":
        event = {"number": event_number, "timestamp": occurred_at, "focus": focus}
    status = status_parameters(
        base,
        item,
        kind,
        events_since_start=event_number,
        event=event,
        parameters_id=bundle_id,
    )
    entries = [
        {
            "fullUrl": f"urn:uuid:{bundle_id}",
            "resource": status,
            "request": {"method": "GET", "url": f"{base}/Subscription/{item.public_id}/$status"},
            "response": {"status": "200"},
        }
    ]
    if task is not None and item.payload.value == "full-resource":
        entries.append(
            {
                "fullUrl": focus,
                "resource": task,
                "request": {"method": "PUT", "url": f"Task/{task['id']}"},
                "response": {"status": "200", "etag": f'W/"{task["meta"]["versionId"]}"'},
            }
        )
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"profile": [NOTIFICATION_PROFILE]},
        "type": "history",
        "timestamp": instant(now),
        "entry": entries,
    }
