"""Push instead of poll: topic-based subscriptions (R4 Subscriptions Backport), delivered by the worker to a
real HTTP receiver (http.server in a thread), with retries, back-off, a dead letter and $status."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from portal.api.delivery import Deliverer, Policy
from portal.api.fhir import TASK_STATUS_TOPIC
from portal.api.models import DeliveryState, Subscription, SubscriptionDelivery
from portal.audit.models import AuditEvent
from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.extensions import db
from portal.referrals.lifecycle import Status
from portal.referrals.models import AppointmentMode
from portal.referrals.services import change_status
from tests import factories
from tests.api.helpers import assert_valid_fhir, bearer, make_client

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"


class Receiver:
    """An EHR's notification endpoint: records every POST; answers with the statuses given, then 200."""

    def __init__(self):
        self.received: list[dict] = []
        self.answers: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                status = outer.answers.pop(0) if outer.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def bundles(self, kind: str | None = None) -> list[dict]:
        found = [r["body"] for r in self.received]
        return [b for b in found if kind is None or _param(b, "type") == kind]


def _param(bundle: dict, name: str):
    status = bundle["entry"][0]["resource"]
    item = next(p for p in status["parameter"] if p["name"] == name)
    return next(v for k, v in item.items() if k.startswith("value")) if "part" not in item else item["part"]


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def headers(client, client_a):
    return bearer(client, client_a)


def subscription_body(endpoint: str, *, content="id-only", criteria=None, headers=None) -> dict:
    body = {
        "resourceType": "Subscription",
        "meta": {"profile": [BACKPORT + "backport-subscription"]},
        "status": "requested",
        "reason": "Follow our referrals",
        "criteria": TASK_STATUS_TOPIC,
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "_payload": {"extension": [{"url": BACKPORT + "backport-payload-content", "valueCode": content}]},
        },
    }
    if criteria:
        body["_criteria"] = {"extension": [{"url": BACKPORT + "backport-filter-criteria", "valueString": criteria}]}
    if headers:
        body["channel"]["header"] = headers
    return body


def subscribe(client, headers, body) -> dict:
    response = client.post(
        "/fhir/Subscription", json=body, headers={**headers, "Content-Type": "application/fhir+json"}
    )
    assert response.status_code == 201, response.get_json()
    resource = response.get_json()
    assert_valid_fhir(resource)
    assert response.headers["Location"].split("/_history/")[0].endswith(f"/fhir/Subscription/{resource['id']}")
    return resource


def worker(**policy) -> Deliverer:
    return Deliverer(Policy(**{"backoff_seconds": 0, "backoff_max_seconds": 0, **policy}))


def move(referral, *targets):
    staff = factories.make_user(Role.STAFF)
    for target in targets:
        change_status(staff, referral, target, first_visit_at=now_utc(), mode=AppointmentMode.IN_CLINIC)
    db.session.flush()


def test_subscribe_handshake_then_one_notification_per_change(client, headers, org_a, clinician_a, receiver):
    sub = subscribe(client, headers, subscription_body(receiver.url, content="full-resource"))
    assert sub["status"] == "active" and sub["criteria"] == TASK_STATUS_TOPIC
    assert receiver.received == []  # never from the request
    worker().run_until_idle()
    (handshake,) = receiver.bundles("handshake")
    assert_valid_fhir(handshake)
    assert handshake["meta"]["profile"] == [BACKPORT + "backport-subscription-notification-r4"]

    referral = factories.make_referral(org_a, clinician_a)
    move(referral, Status.ACCEPTED, Status.SCHEDULED)
    assert len(receiver.received) == 1  # still nothing until the worker runs
    totals = worker().run_until_idle()
    assert totals.sent == 2
    events = receiver.bundles("event-notification")
    assert [_param(b, "events-since-subscription-start") for b in events] == ["1", "2"]
    for bundle in events:
        assert_valid_fhir(bundle)
        assert bundle["type"] == "history"
        part = {p["name"]: p for p in _param(bundle, "notification-event")}
        assert part["focus"]["valueReference"]["reference"].endswith(f"/fhir/Task/{referral.public_id}")
        task = bundle["entry"][1]["resource"]
        assert task["resourceType"] == "Task" and task["id"] == str(referral.public_id)
    # full-resource: the Task as it is now (both show the latest state)
    assert events[-1]["entry"][1]["resource"]["status"] == "in-progress"
    # Delivered once: running again sends nothing.
    assert worker().run_until_idle().sent == 0 and len(receiver.received) == 3
    assert db.session.scalar(select(func.count()).where(AuditEvent.action == "api.notification_sent")) == 3

    status = client.get(f"/fhir/Subscription/{sub['id']}/$status", headers=headers).get_json()
    assert_valid_fhir(status)
    params = {p["name"]: p for p in status["entry"][0]["resource"]["parameter"]}
    assert params["events-since-subscription-start"]["valueString"] == "2"
    assert params["status"]["valueCode"] == "active" and params["type"]["valueCode"] == "query-status"


def test_id_only_and_empty_payloads(client, headers, org_a, clinician_a, receiver):
    subscribe(client, headers, subscription_body(receiver.url, content="id-only"))
    subscribe(client, headers, subscription_body(receiver.url + "?empty", content="empty"))
    referral = factories.make_referral(org_a, clinician_a)
    move(referral, Status.ACCEPTED)
    worker().run_until_idle()
    by_path = {r["path"]: r["body"] for r in receiver.received if _param(r["body"], "type") == "event-notification"}
    id_only, empty = by_path["/notify"], by_path["/notify?empty"]
    assert len(id_only["entry"]) == 1 and len(empty["entry"]) == 1
    assert "focus" in {p["name"] for p in _param(id_only, "notification-event")}
    assert "focus" not in {p["name"] for p in _param(empty, "notification-event")}
    for bundle in (id_only, empty):
        assert_valid_fhir(bundle)


def test_retries_with_back_off_then_success(client, headers, org_a, clinician_a, receiver):
    sub = subscribe(client, headers, subscription_body(receiver.url))
    worker().run_until_idle()  # the handshake
    receiver.answers = [500, 503]
    move(factories.make_referral(org_a, clinician_a), Status.ACCEPTED)
    totals = worker().run_until_idle()
    assert (totals.retried, totals.sent) == (2, 1)
    events = receiver.bundles("event-notification")
    assert len(events) == 3 and len({b["id"] for b in events}) == 1  # the same Bundle id every time: receivers dedupe
    row = db.session.scalar(select(SubscriptionDelivery).where(SubscriptionDelivery.event_number == 1))
    assert (row.state, row.attempts) == (DeliveryState.SENT, 3)
    assert client.get(f"/fhir/Subscription/{sub['id']}", headers=headers).get_json()["status"] == "active"


def test_back_off_waits(client, headers, org_a, clinician_a, receiver):
    subscribe(client, headers, subscription_body(receiver.url))
    receiver.answers = [500]
    slow = Deliverer(Policy(backoff_seconds=600))
    totals = slow.run_until_idle()  # the handshake fails once, and is not due again for minutes
    assert (totals.retried, totals.sent) == (1, 0)
    row = db.session.scalar(select(SubscriptionDelivery))
    assert row.next_attempt_at > now_utc() + timedelta(seconds=250) and row.last_error == "HTTP 500"


def test_dead_letter_marks_the_subscription_in_error(client, headers, org_a, clinician_a, receiver):
    sub = subscribe(client, headers, subscription_body(receiver.url))
    receiver.answers = [500] * 3
    totals = worker(max_attempts=3).run_until_idle()
    assert totals.dead == 1
    assert db.session.scalar(select(SubscriptionDelivery.state)) == DeliveryState.DEAD
    read = client.get(f"/fhir/Subscription/{sub['id']}", headers=headers).get_json()
    assert read["status"] == "error" and "HTTP 500" in read["error"]
    assert_valid_fhir(read)
    # Events still queue while in error; the next success makes it active again.
    move(factories.make_referral(org_a, clinician_a), Status.ACCEPTED)
    assert worker().run_until_idle().sent == 1
    assert client.get(f"/fhir/Subscription/{sub['id']}", headers=headers).get_json()["status"] == "active"


def test_unreachable_receiver_is_retried(client, headers, receiver):
    subscribe(client, headers, subscription_body("http://127.0.0.1:9/nobody"))
    totals = worker(max_attempts=2).run_until_idle()
    assert totals.retried == 1 and totals.dead == 1
    assert db.session.scalar(select(SubscriptionDelivery.last_error)) == "ConnectionError"


def test_filter_criteria(client, headers, org_a, clinician_a, receiver):
    subscribe(client, headers, subscription_body(receiver.url, criteria="Task?status=completed,cancelled"))
    referral = factories.make_referral(org_a, clinician_a)
    move(referral, Status.ACCEPTED, Status.SCHEDULED, Status.IN_CARE, Status.DISCHARGED)
    worker().run_until_idle()
    events = receiver.bundles("event-notification")
    assert len(events) == 1 and _param(events[0], "events-since-subscription-start") == "1"


def test_channel_headers_are_sent_and_never_echoed(client, headers, receiver):
    sub = subscribe(client, headers, subscription_body(receiver.url, headers=["Authorization: Bearer receiver-secret"]))
    assert "receiver-secret" not in json.dumps(sub)
    worker().run_until_idle()
    assert receiver.received[0]["headers"]["Authorization"] == "Bearer receiver-secret"
    assert receiver.received[0]["headers"]["Content-Type"] == "application/fhir+json"
    row = db.session.scalar(select(Subscription))
    assert b"receiver-secret" not in row.headers_ct


def test_another_organization_never_hears_of_it(client, headers, org_a, org_b, clinician_a, receiver):
    headers_b = bearer(client, make_client(org_b, name="Org B EHR"))
    sub_b = subscribe(client, headers_b, subscription_body(receiver.url + "?b"))
    subscribe(client, headers, subscription_body(receiver.url + "?a"))
    move(factories.make_referral(org_a, clinician_a), Status.ACCEPTED)
    worker().run_until_idle()
    to_b = [r for r in receiver.received if r["path"] == "/notify?b"]
    assert [_param(r["body"], "type") for r in to_b] == ["handshake"]
    # A's client cannot see or stop B's subscription, or list it.
    for path in (f"/fhir/Subscription/{sub_b['id']}", f"/fhir/Subscription/{sub_b['id']}/$status"):
        assert client.get(path, headers=headers).status_code == 404
    assert client.delete(f"/fhir/Subscription/{sub_b['id']}", headers=headers).status_code == 404
    listed = client.get("/fhir/Subscription", headers=headers).get_json()
    assert_valid_fhir(listed)
    assert sub_b["id"] not in {e["resource"]["id"] for e in listed["entry"]} and listed["total"] == 1


def test_a_change_that_rolls_back_notifies_nobody(client, headers, org_a, clinician_a, receiver, login_as):
    subscribe(client, headers, subscription_body(receiver.url))
    referral = factories.make_referral(org_a, clinician_a)
    login_as("staff")
    response = client.post(
        f"/staff/referrals/{referral.public_id}/status", data={"target": "accepted", "version": referral.version + 5}
    )
    assert response.status_code == 409  # someone else changed it: nothing saved
    assert db.session.scalar(select(func.count()).where(SubscriptionDelivery.kind == "event-notification")) == 0
    response = client.post(
        f"/staff/referrals/{referral.public_id}/status", data={"target": "accepted", "version": referral.version}
    )
    assert response.status_code == 302
    assert db.session.scalar(select(func.count()).where(SubscriptionDelivery.kind == "event-notification")) == 1


def test_unsubscribe(client, headers, org_a, clinician_a, receiver):
    sub = subscribe(client, headers, subscription_body(receiver.url))
    assert client.delete(f"/fhir/Subscription/{sub['id']}", headers=headers).status_code == 204
    assert client.get(f"/fhir/Subscription/{sub['id']}", headers=headers).status_code == 404
    move(factories.make_referral(org_a, clinician_a), Status.ACCEPTED)
    assert worker().run_until_idle().claimed == 0 and receiver.received == []


@pytest.mark.parametrize(
    "change, status",
    [
        (lambda b: b.update(criteria="Task?status=completed"), 422),
        (lambda b: b["channel"].update(endpoint="http://ehr.example/notify"), 422),  # https only
        (lambda b: b["channel"].update(type="websocket"), 422),
        (lambda b: b.pop("reason"), 400),
        (lambda b: b.update(status="off"), 422),
        (lambda b: b["channel"].update(header=["Host: evil.example"]), 422),
        (lambda b: b["channel"].update(header=["X-Injected: a\r\nB: c"]), 422),
        (
            lambda b: b.update(
                _criteria={"extension": [{"url": BACKPORT + "backport-filter-criteria", "valueString": "Patient?x=1"}]}
            ),
            422,
        ),
        (
            lambda b: b["channel"].update(
                extension=[{"url": BACKPORT + "backport-heartbeat-period", "valueUnsignedInt": 60}]
            ),
            422,
        ),
        (lambda b: b.update(end="2020-01-01T00:00:00Z"), 422),
        (lambda b: b.update(resourceType="Task"), 400),
    ],
)
def test_subscriptions_this_server_does_not_offer(client, headers, receiver, change, status):
    body = subscription_body(receiver.url)
    change(body)
    response = client.post(
        "/fhir/Subscription", json=body, headers={**headers, "Content-Type": "application/fhir+json"}
    )
    assert response.status_code == status, response.get_json()
    assert_valid_fhir(response.get_json())
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 0


def test_subscriptions_need_their_scope(client, client_a, receiver):
    read_only = bearer(client, client_a, scope="system/Task.read system/Subscription.read")
    response = client.post(
        "/fhir/Subscription",
        json=subscription_body(receiver.url),
        headers={**read_only, "Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 403


def test_a_disabled_client_gets_nothing(client, headers, client_a, org_a, clinician_a, receiver):
    subscribe(client, headers, subscription_body(receiver.url))
    move(factories.make_referral(org_a, clinician_a), Status.ACCEPTED)  # queued while enabled
    client_a.is_enabled = False
    db.session.flush()
    move(factories.make_referral(org_a, clinician_a), Status.ACCEPTED)  # not even queued
    totals = worker().run_until_idle()
    assert receiver.received == [] and totals.sent == 0 and totals.dead == 2  # the handshake and the first event
    assert db.session.scalar(select(func.count()).select_from(SubscriptionDelivery)) == 2


def test_subscribing_needs_task_reads(client, org_a, receiver):
    only_subscriptions = make_client(org_a, scopes=["system/Subscription.write", "system/Subscription.read"])
    headers = bearer(client, only_subscriptions, scope="system/Subscription.write")
    response = client.post(
        "/fhir/Subscription",
        json=subscription_body(receiver.url),
        headers={**headers, "Content-Type": "application/fhir+json"},
    )
    assert response.status_code == 403


def test_the_long_running_loop_delivers_and_stops(client, headers, receiver):
    """`flask fhir deliver` without --once: keep_running around batches until stopped."""
    import threading as _threading

    subscribe(client, headers, subscription_body(receiver.url))
    stop = _threading.Event()
    deliverer = worker()
    batches = []
    real = deliverer.run_batch

    def once_then_stop():
        result = real()
        batches.append(result)
        stop.set()
        return result

    deliverer.run_batch = once_then_stop
    deliverer.run(poll_seconds=0.01, stop=stop)
    assert batches[0].sent == 1 and len(receiver.received) == 1
