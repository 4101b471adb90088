"""The FHIR API on a real server (gunicorn as `make run` serves it: two workers of two threads), on SQLite and
PostgreSQL alike: 20 clients reading and searching at once get no 5xx; identical Bundles racing make one
referral; and `flask fhir deliver`, run as its own process, pushes a status change to a subscriber."""

import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
import requests
from sqlalchemy import func, select

from portal import create_app
from portal.accounts.models import User
from portal.api.fhir.capability import example_referral, example_subscription
from portal.api.models import OrderIdentifier
from portal.api.services import register_client
from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.extensions import db
from portal.partners.models import Organization
from portal.referrals.lifecycle import Status
from portal.referrals.models import AppointmentMode, Referral
from portal.referrals.services import change_status
from tests import live
from tests.api.helpers import ALL_SCOPES, ASSERTION_TYPE, assertion, ec_key, public_jwks, rsa_key

FHIR_JSON = "application/fhir+json"


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    with live.serve(tmp_path_factory.mktemp("fhir-live"), "fhirlive") as served:
        yield served


def _in_app(portal, work):
    app = create_app(portal.config)
    with app.app_context(), app.test_request_context():
        try:
            result = work()
            db.session.commit()
            return result
        finally:
            db.session.remove()
            db.engine.dispose()


@pytest.fixture(scope="module")
def api(portal):
    """Lakeside Orthopedics' EHR, registered by the demo admin; a token with every scope."""

    def register():
        admin = db.session.scalar(select(User).where(User.role == Role.ADMIN))
        lakeside = db.session.scalar(select(Organization).where(Organization.name == "Lakeside Orthopedics"))
        client = register_client(admin, lakeside, "Lakeside EHR", public_jwks(rsa_key(), ec_key()), None, ALL_SCOPES)
        return client.client_id

    client_id = _in_app(portal, register)
    response = requests.post(
        portal.base + "/fhir/auth/token",
        data={
            "grant_type": "client_credentials",
            "scope": " ".join(ALL_SCOPES),
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(SimpleNamespace(client_id=client_id), aud=portal.base + "/fhir/auth/token"),
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}", "Accept": FHIR_JSON}


def _bundle(order: str) -> dict:
    bundle = example_referral()  # its requester's NPI is the demo's Lakeside partner admin's
    sr = bundle["entry"][2]
    sr["resource"]["identifier"][0]["value"] = order
    sr["request"]["ifNoneExist"] = f"identifier={sr['resource']['identifier'][0]['system']}|{order}"
    return bundle


def _submit(portal, headers, order: str) -> requests.Response:
    return requests.post(
        portal.base + "/fhir",
        data=json.dumps(_bundle(order)),
        headers={**headers, "Content-Type": FHIR_JSON},
        timeout=60,
    )


def _sr_id(response) -> str:
    assert response.status_code == 200, response.text
    return next(
        e["resource"]["id"]
        for e in response.json()["entry"]
        if e.get("resource", {}).get("resourceType") == "ServiceRequest"
    )


def test_twenty_clients_reading_and_searching_at_once_get_no_server_error(portal, api):
    task_id = _sr_id(_submit(portal, api, "LIVE-READS"))
    patient = requests.get(f"{portal.base}/fhir/Task/{task_id}", headers=api, timeout=30).json()["for"]["reference"]
    paths = [
        "/fhir/Task",
        f"/fhir/Task/{task_id}",
        f"/fhir/ServiceRequest/{task_id}",
        f"/fhir/{patient}",
        "/fhir/Patient?identifier=MRN-0001",
        f"/fhir/Task?patient={patient}&_count=5",
        "/fhir/Observation",
        "/fhir/DocumentReference",
        "/fhir/Consent",
        "/fhir/Organization/practice",
        "/fhir/metadata",
    ]
    statuses: Counter = Counter()
    failures: list[str] = []
    stop = time.monotonic() + 3.0
    start = threading.Barrier(20)

    def reader(n: int) -> None:
        session = requests.Session()
        start.wait()
        i = n
        while time.monotonic() < stop:
            path = paths[i % len(paths)]
            i += 1
            response = session.get(portal.base + path, headers=api, timeout=60)
            statuses[response.status_code] += 1
            if response.status_code >= 500 or response.status_code != 200:
                failures.append(f"{path} -> {response.status_code}")

    with ThreadPoolExecutor(20) as pool:
        list(pool.map(reader, range(20)))
    assert sum(statuses.values()) >= 40, statuses
    assert failures == [], (statuses, failures[:10])


def test_identical_bundles_racing_make_one_referral(portal, api):
    order = f"RACE-{uuid.uuid4().hex[:8]}"
    start = threading.Barrier(8)

    def racer(_):
        start.wait()
        return _submit(portal, api, order)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(racer, range(8)))
    ids = {_sr_id(r) for r in responses}
    assert len(ids) == 1, ids
    statuses = Counter(r.json()["entry"][2]["response"]["status"] for r in responses)
    assert statuses == {"201 Created": 1, "200 OK": 7}

    def count():
        return db.session.scalar(
            select(func.count()).select_from(Referral).where(Referral.public_id == uuid.UUID(ids.pop()))
        ), db.session.scalar(select(func.count()).select_from(OrderIdentifier))

    referrals, claims = _in_app(portal, count)
    assert referrals == 1 and claims >= 1


class _Receiver:
    def __init__(self):
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_the_delivery_command_pushes_a_status_change(portal, api):
    receiver = _Receiver()
    try:
        response = requests.post(
            portal.base + "/fhir/Subscription",
            data=json.dumps(example_subscription(receiver.url)),
            headers={**api, "Content-Type": FHIR_JSON},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        task_id = _sr_id(_submit(portal, api, "LIVE-PUSH"))

        def accept():
            staff = db.session.scalar(select(User).where(User.role == Role.STAFF))
            referral = db.session.scalar(select(Referral).where(Referral.public_id == uuid.UUID(task_id)))
            change_status(
                staff,
                referral,
                Status.ACCEPTED,
                first_visit_at=now_utc() + timedelta(days=1),
                mode=AppointmentMode.IN_CLINIC,
            )

        _in_app(portal, accept)
        assert receiver.bodies == []  # nothing is sent by the request that changed it
        done = portal.flask("fhir", "deliver", "--once")
        assert done.returncode == 0, done.stderr
        kinds = [b["entry"][0]["resource"]["parameter"][3]["valueCode"] for b in receiver.bodies]
        assert kinds == ["handshake", "event-notification"], kinds
        focus = receiver.bodies[1]["entry"][0]["resource"]["parameter"][5]["part"][2]["valueReference"]["reference"]
        assert focus.endswith(f"/fhir/Task/{task_id}")
        again = portal.flask("fhir", "deliver", "--once")
        assert again.returncode == 0 and len(receiver.bodies) == 2  # delivered once
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
