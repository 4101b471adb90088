"""Topic-based subscriptions: a client subscribes to its organization's Task status changes (one topic), and
each change queues one notification per matching subscription, in the transaction of the change.

The change and its notifications commit together or not at all (an outbox: the delivery rows are written by
the signal receiver below, inside the request that moved the referral); the worker (``portal/api/delivery.py``,
``flask fhir deliver``) sends them later, never the request. Event numbers come from an atomic
``UPDATE ... RETURNING`` on the subscription's counter, and (subscription, event number) is unique, so one change
is one event, numbered once.

Add and flush; the request commits.
"""

import re
from datetime import datetime

from sqlalchemy import delete, or_, select, update

from portal.api.fhir import TASK_STATUS_TOPIC, FhirError
from portal.api.fhir.intake import Element, invalid, unprocessable
from portal.api.fhir.notifications import FILTER_CRITERIA, HEARTBEAT_PERIOD, MAX_COUNT, PAYLOAD_CONTENT, TIMEOUT
from portal.api.fhir.searchparams import TASK_STATUS_CODES
from portal.api.models import PayloadContent, Subscription, SubscriptionDelivery, SubscriptionStatus
from portal.api.smart import granted_letters, url_allowed
from portal.audit.services import AuditAction, record
from portal.core.time import now_utc
from portal.extensions import db
from portal.referrals.lifecycle import FHIR_TASK_STATUS

MAX_HEADERS = 5
MAX_TIMEOUT_SECONDS = 30
_HEADER = re.compile(r"^(?P<name>[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}):[ \t]*(?P<value>[^\r\n]{1,1000})$", re.ASCII)
# Headers the delivery sets itself (or that would change how the request travels).
RESERVED_HEADERS = {"host", "content-type", "content-length", "transfer-encoding", "connection"}
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$", re.ASCII)


def _extension(element: Element | None, url: str):
    """The value of the element's extension with this url (None when absent)."""
    if element is None:
        return None
    for ext in element.objs("extension"):
        if ext.str("url") == url:
            values = [v for k, v in ext.data.items() if k.startswith("value")]
            return values[0] if values else None
    return None


def _filter(resource: Element) -> str | None:
    """backport-filter-criteria: Task?status=code[,code]; the Task status codes it keeps, comma-separated."""
    value = _extension(resource.obj("_criteria"), FILTER_CRITERIA)
    if value is None:
        return None
    path = "Subscription.criteria.extension"
    if not isinstance(value, str):
        raise invalid("The filter criteria must be a valueString.", path)
    match = re.fullmatch(r"Task\?status=([a-z\-,]+)", value.strip())
    if match is None:
        raise FhirError(422, "The only filter is Task?status=code[,code] (Task.status codes).", "not-supported", path)
    codes = [c for c in match[1].split(",") if c]
    if not codes or any(c not in TASK_STATUS_CODES for c in codes):
        raise unprocessable("The filter names a code that is not a Task.status.", path)
    return ",".join(dict.fromkeys(codes))


def may_follow_tasks(client) -> bool:
    """Notifications carry Tasks (their ids at least): only a client granted Task reads gets them."""
    return "r" in granted_letters(client.scope_set).get("Task", frozenset()) and client.is_enabled


def create(actor, body) -> Subscription:
    """A rest-hook subscription of the client to the task-status topic, active at once; a handshake is queued."""
    if not isinstance(body, dict) or body.get("resourceType") != "Subscription":
        raise invalid("Send a Subscription resource.", "Subscription")
    if not may_follow_tasks(actor.client):
        raise FhirError(
            403, "Subscribing to Task changes needs the client to be granted system/Task.read.", "forbidden"
        )
    resource = Element(body, "Subscription")
    if resource.str("criteria") != TASK_STATUS_TOPIC:
        raise unprocessable(f"Subscription.criteria must be the topic {TASK_STATUS_TOPIC}.", "Subscription.criteria")
    status = resource.code("status", {s.value for s in SubscriptionStatus})
    if status not in ("requested", "active"):
        raise unprocessable("Subscription.status must be requested (or active).", "Subscription.status")
    reason = resource.str("reason")
    if not reason:
        raise invalid("Subscription.reason is required.", "Subscription.reason")
    channel = resource.obj("channel")
    if channel is None:
        raise invalid("Subscription.channel is required.", "Subscription.channel")
    if channel.str("type") != "rest-hook":
        raise unprocessable("Only rest-hook channels are offered.", "Subscription.channel.type")
    endpoint = channel.str("endpoint")
    if not endpoint or len(endpoint) > 500 or not url_allowed(endpoint):
        raise unprocessable("Subscription.channel.endpoint must be an https URL.", "Subscription.channel.endpoint")
    payload_type = channel.str("payload")
    if payload_type and payload_type.split(";")[0].strip() not in ("application/fhir+json", "application/json"):
        raise unprocessable("Notifications are sent as application/fhir+json.", "Subscription.channel.payload")
    content = _extension(channel.obj("_payload"), PAYLOAD_CONTENT) or PayloadContent.ID_ONLY.value
    if content not in {p.value for p in PayloadContent}:
        raise unprocessable("Payload content is empty, id-only or full-resource.", "Subscription.channel.payload")
    if _extension(channel, HEARTBEAT_PERIOD) is not None:
        raise FhirError(422, "Heartbeat notifications are not offered.", "not-supported", "Subscription.channel")
    max_count = _extension(channel, MAX_COUNT)
    if max_count is not None and (not isinstance(max_count, int) or max_count < 1):
        raise invalid("backport-max-count must be a positive integer.", "Subscription.channel")
    timeout = _extension(channel, TIMEOUT)
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1):
        raise invalid("backport-timeout must be a positive integer (seconds).", "Subscription.channel")
    headers = channel.strs("header")
    if len(headers) > MAX_HEADERS:
        raise unprocessable(f"At most {MAX_HEADERS} channel headers.", "Subscription.channel.header")
    for header in headers:
        match = _HEADER.match(header)
        if match is None or match["name"].lower() in RESERVED_HEADERS:
            raise unprocessable(
                'Each channel.header is "Name: value", not a reserved header.', "Subscription.channel.header"
            )
    end = resource.str("end")
    end_at = None
    if end:
        if not _INSTANT.match(end):
            raise invalid("Subscription.end must be an instant.", "Subscription.end")
        end_at = datetime.fromisoformat(end.replace("Z", "+00:00"))
        if end_at <= now_utc():
            raise unprocessable("Subscription.end is in the past.", "Subscription.end")

    item = Subscription(
        client_id=actor.client.id,
        organization_id=actor.organization_id,
        topic=TASK_STATUS_TOPIC,
        status=SubscriptionStatus.ACTIVE,
        endpoint=endpoint,
        payload=PayloadContent(content),
        filter_status=_filter(resource),
        end_at=end_at,
        timeout_seconds=min(timeout or 10, MAX_TIMEOUT_SECONDS),
    )
    item.reason = reason[:500]
    item.headers = headers or None
    db.session.add(item)
    db.session.flush()
    db.session.add(SubscriptionDelivery(subscription_id=item.id, kind="handshake", event_number=0))
    record(AuditAction.API_SUBSCRIPTION_CREATED, actor=actor, obj=item, topic=item.topic, payload=item.payload.value)
    db.session.flush()
    return item


def unsubscribe(actor, item: Subscription) -> None:
    """Unsubscribe: the subscription and its undelivered notifications go."""
    record(AuditAction.API_SUBSCRIPTION_DELETED, actor=actor, obj=item)
    db.session.execute(delete(SubscriptionDelivery).where(SubscriptionDelivery.subscription_id == item.id))
    db.session.delete(item)
    db.session.flush()


def queue_status_notifications(referral, *, previous=None, target=None, **_) -> None:
    """portal.core.signals.referral_status_changed: one event per matching subscription of the referral's
    organization, in the transaction of the change. Another organization's subscriptions never see it."""
    task_status = FHIR_TASK_STATUS[target or referral.status]
    now = now_utc()
    subscriptions = db.session.scalars(
        select(Subscription).where(
            Subscription.organization_id == referral.organization_id,
            Subscription.topic == TASK_STATUS_TOPIC,
            Subscription.status.in_([SubscriptionStatus.ACTIVE, SubscriptionStatus.ERROR]),
            or_(Subscription.end_at.is_(None), Subscription.end_at > now),
        )
    ).all()
    table = Subscription.__table__
    for item in subscriptions:
        if item.filter_status and task_status not in item.filter_status.split(","):
            continue
        if not may_follow_tasks(item.client):  # disabled, or no longer granted Task reads: nothing queued
            continue
        number = db.session.execute(
            update(table)
            .where(table.c.id == item.id)
            .values(events_since_start=table.c.events_since_start + 1)
            .returning(table.c.events_since_start)
        ).scalar_one()
        db.session.expire(item, ["events_since_start"])
        db.session.add(
            SubscriptionDelivery(
                subscription_id=item.id,
                kind="event-notification",
                event_number=number,
                referral_id=referral.id,
                task_status=task_status,
                occurred_at=now,
            )
        )
    if subscriptions:
        db.session.flush()
