"""/metrics: Prometheus text for the monitoring server only (a bearer token or an allowed address),
with request counts and latencies by endpoint and status and the queues that need watching."""

from prometheus_client.parser import text_string_to_metric_families

from portal.audit.services import record
from portal.notifications.services import enqueue
from portal.ops.metrics import BACKUP_ACTION

TOKEN = "scrape-token-for-tests-0123456789"


def _samples(text: str) -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_need_the_token_or_an_allowed_address(app, client, db, monkeypatch):
    assert client.get("/metrics").status_code == 404  # neither configured: no such page
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "")
    monkeypatch.setitem(app.config, "METRICS_ALLOWED_IPS", "10.0.0.0/8")
    assert client.get("/metrics").status_code == 403  # 127.0.0.1 is not in it
    monkeypatch.setitem(app.config, "METRICS_ALLOWED_IPS", "10.0.0.0/8, 127.0.0.1")
    assert client.get("/metrics").status_code == 200


def test_a_signed_in_session_opens_nothing(app, client, db, login_as, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)
    login_as("admin")
    assert client.get("/metrics").status_code == 401


def test_requests_queues_audit_and_backups_are_reported(app, client, db, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = _samples(client.get("/metrics", headers=auth).get_data(as_text=True))
    for _ in range(3):
        client.get("/healthz")
    client.get("/no/such/page")
    enqueue("a@example.com", "password_reset", link="https://p.example/l/1", minutes=60)
    enqueue("b@example.com", "password_reset", link="https://p.example/l/2", minutes=60)
    record(BACKUP_ACTION, directory="nightly")
    db.session.commit()

    response = client.get("/metrics", headers=auth)
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    after = _samples(response.get_data(as_text=True))
    health = ("portal_http_requests_total", (("endpoint", "home.health"), ("method", "GET"), ("status", "200")))
    assert after[health] - before.get(health, 0) == 3
    unmatched = ("portal_http_requests_total", (("endpoint", "unmatched"), ("method", "GET"), ("status", "404")))
    assert after[unmatched] >= 1
    latency = (
        "portal_http_request_duration_seconds_count",
        (("endpoint", "home.health"), ("method", "GET"), ("status", "200")),
    )
    assert after[latency] - before.get(latency, 0) == 3
    assert after[("portal_database_up", ())] == 1
    assert after[("portal_outbox_messages", (("state", "pending"),))] == 2
    assert after[("portal_outbox_oldest_pending_age_seconds", ())] >= 0
    assert ("portal_audit_unsealed_events", ()) in after
    assert after[("portal_backup_last_success_timestamp_seconds", ())] > 1.7e9
    assert after[("portal_upload_free_bytes", ())] > 0
    assert "/no/such/page" not in response.get_data(as_text=True)  # endpoints, never paths


def test_a_database_outage_is_a_gauge_not_a_failed_scrape(app, client, db, monkeypatch):
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)

    def refused(self, *args, **kwargs):
        raise OperationalError(None, {}, ConnectionRefusedError("refused"))

    monkeypatch.setattr(Session, "execute", refused)
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert _samples(response.get_data(as_text=True))[("portal_database_up", ())] == 0
