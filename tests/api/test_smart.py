"""SMART Backend Services: discovery, token issue, and each refusal with its OAuth 2 error."""

import time

import pytest
from joserfc.jwk import RSAKey
from sqlalchemy import select

from portal.api.models import AccessToken
from portal.audit.models import AuditEvent
from portal.extensions import db
from tests.api.helpers import TOKEN_URL, ec_key, make_client, rsa_key, token_request


def test_smart_configuration_names_the_token_endpoint(client):
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        config = client.get(path).get_json()
        assert config["token_endpoint"] == TOKEN_URL
        assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
        assert set(config["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
        assert "client-confidential-asymmetric" in config["capabilities"]


@pytest.mark.parametrize("key", ["rsa", "ec"])
def test_token_issued_for_a_signed_assertion(client, client_a, key):
    response = token_request(
        client, client_a, scope="system/Task.read system/Observation.read", key=rsa_key() if key == "rsa" else ec_key()
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"].lower() == "bearer" and body["expires_in"] == 300
    assert set(body["scope"].split()) == {"system/Task.read", "system/Observation.read"}
    assert response.headers["Cache-Control"] == "no-store"
    stored = db.session.scalar(select(AccessToken))
    assert stored.token_digest != body["access_token"].encode()  # only a digest is kept
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "api.token_issued"))
    assert event.actor_id is None and event.detail["client"] == client_a.client_id


def _error(response):
    return response.status_code, response.get_json()["error"]


def test_expired_assertion(client, client_a):
    assert _error(token_request(client, client_a, exp_in=-120))[1] == "invalid_client"


def test_assertion_living_longer_than_five_minutes(client, client_a):
    assert _error(token_request(client, client_a, exp_in=3600))[1] == "invalid_client"


def test_assertion_issued_in_the_future(client, client_a):
    assert _error(token_request(client, client_a, iat_offset=600, exp_in=290))[1] == "invalid_client"


def test_replayed_jti(client, client_a):
    assert token_request(client, client_a, jti="once-only").status_code == 200
    status, error = _error(token_request(client, client_a, jti="once-only"))
    assert error == "invalid_client"


def test_wrong_audience(client, client_a):
    assert _error(token_request(client, client_a, aud="https://elsewhere.example/token"))[1] == "invalid_client"


def test_unknown_kid(client, client_a):
    assert _error(token_request(client, client_a, kid="not-registered"))[1] == "invalid_client"


def test_bad_signature(client, client_a):
    impostor = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})  # same kid, other key
    assert _error(token_request(client, client_a, key=impostor))[1] == "invalid_client"


def test_unsupported_algorithm(client, client_a):
    assert _error(token_request(client, client_a, alg="RS256"))[1] == "invalid_client"


def test_iss_must_equal_sub(client, client_a):
    assert _error(token_request(client, client_a, iss="someone-else"))[1] == "invalid_client"


def test_unknown_client(client, client_a):
    assert _error(token_request(client, client_a, iss="ehr-nobody", sub="ehr-nobody"))[1] == "invalid_client"


def test_scope_not_granted(client, org_a):
    limited = make_client(org_a, scopes=["system/Task.read"])
    assert _error(token_request(client, limited, scope="system/Task.read system/Observation.read")) == (
        400,
        "invalid_scope",
    )
    assert _error(token_request(client, limited, scope="system/Patient.read"))[1] == "invalid_scope"
    assert _error(token_request(client, limited, scope=""))[1] == "invalid_scope"


def test_disabled_client(client, client_a):
    client_a.is_enabled = False
    db.session.flush()
    assert _error(token_request(client, client_a)) == (400, "unauthorized_client")


def test_wrong_grant_type_and_missing_assertion(client, client_a):
    response = client.post("/fhir/auth/token", data={"grant_type": "authorization_code"})
    assert response.get_json()["error"] == "unsupported_grant_type"
    response = client.post("/fhir/auth/token", data={"grant_type": "client_credentials", "scope": "system/Task.read"})
    assert response.get_json()["error"] == "invalid_client"


def test_refusals_are_audited(client, client_a):
    token_request(client, client_a, exp_in=-120)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "api.token_refused"))
    assert event.detail["error"] == "invalid_client" and event.detail["client"] == client_a.client_id


def test_disabling_a_client_ends_its_tokens(client, client_a):
    response = token_request(client, client_a)
    headers = {"Authorization": f"Bearer {response.get_json()['access_token']}"}
    assert client.get("/fhir/Task", headers=headers).status_code == 200
    client_a.is_enabled = False
    db.session.flush()
    response = client.get("/fhir/Task", headers=headers)
    assert response.status_code == 401 and response.get_json()["resourceType"] == "OperationOutcome"


def test_expired_token_refused(client, client_a):
    response = token_request(client, client_a)
    headers = {"Authorization": f"Bearer {response.get_json()['access_token']}"}
    stored = db.session.scalar(select(AccessToken))
    from datetime import timedelta

    stored.expires_at = stored.expires_at - timedelta(seconds=301)
    db.session.flush()
    assert client.get("/fhir/Task", headers=headers).status_code == 401
    assert 'error="invalid_token"' in client.get("/fhir/Task", headers=headers).headers["WWW-Authenticate"]


def test_scope_enforced_on_resources(client, client_a):
    response = token_request(client, client_a, scope="system/Task.read")
    headers = {"Authorization": f"Bearer {response.get_json()['access_token']}"}
    response = client.get("/fhir/Observation", headers=headers)
    assert response.status_code == 403 and response.get_json()["issue"][0]["code"] == "forbidden"


def test_jwks_url_client_whose_keys_cannot_be_fetched(client, org_a):
    from portal.api.services import register_client
    from tests import factories

    unreachable = register_client(
        factories.make_user("admin"), org_a, "URL EHR", None, "http://127.0.0.1:9/jwks.json", ["system/Task.read"]
    )
    assert _error(token_request(client, unreachable))[1] == "invalid_client"


def test_assertion_time_is_checked_against_the_clock(client, client_a):
    # exp exactly at the five-minute bound is fine
    assert token_request(client, client_a, exp_in=300).status_code == 200
    assert time.time()  # keeps the clock import honest


def test_unknown_client_and_bad_signature_get_the_same_answer(client, client_a):
    """A prober cannot tell which client ids exist: unknown client, unknown kid, bad signature: same words."""
    impostor = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    answers = [
        token_request(client, client_a, iss="ehr-nobody", sub="ehr-nobody"),
        token_request(client, client_a, kid="not-registered"),
        token_request(client, client_a, key=impostor),
    ]
    bodies = [(r.status_code, r.get_json()) for r in answers]
    assert bodies[0][1]["error"] == "invalid_client"
    assert bodies[0] == bodies[1] == bodies[2]
    assert "exist" not in bodies[0][1]["error_description"]
    # The audit trail keeps the specific reason.
    reasons = [
        e.detail.get("reason")
        for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action == "api.token_refused"))
    ]
    assert sorted(reasons) == ["bad signature", "unknown client", "unknown kid"]


def test_smart_v2_scopes_beside_v1(client, client_a):
    config = client.get("/.well-known/smart-configuration").get_json()
    assert {"permission-v1", "permission-v2"} <= set(config["capabilities"])
    assert {"system/Task.rs", "system/Task.read", "system/ServiceRequest.cud"} <= set(config["scopes_supported"])
    response = token_request(client, client_a, scope="system/Task.rs system/Observation.r")
    assert response.status_code == 200, response.get_json()
    assert set(response.get_json()["scope"].split()) == {"system/Task.rs", "system/Observation.r"}
    headers = {"Authorization": f"Bearer {response.get_json()['access_token']}"}
    assert client.get("/fhir/Task", headers=headers).status_code == 200
    # .r reads but does not search.
    assert client.get("/fhir/Observation", headers=headers).status_code == 403
    assert client.get("/fhir/Observation/00000000-0000-4000-8000-000000000000", headers=headers).status_code == 404


def test_v2_scopes_are_granted_only_within_the_v1_grant(client, org_a):
    limited = make_client(org_a, scopes=["system/Task.read"])
    assert _error(token_request(client, limited, scope="system/Task.cruds")) == (400, "invalid_scope")
    assert _error(token_request(client, limited, scope="system/ServiceRequest.c")) == (400, "invalid_scope")
    for bad in ("system/*.rs", "system/Task.sr", "system/Task.rs?status=completed", "patient/Task.rs", "system/Task."):
        assert _error(token_request(client, limited, scope=bad)) == (400, "invalid_scope"), bad
    assert token_request(client, limited, scope="system/Task.s").status_code == 200


def test_a_v1_write_scope_covers_v2_create(client, org_a, clinician_a):
    writer = make_client(org_a, scopes=["system/ServiceRequest.write"])
    response = token_request(client, writer, scope="system/ServiceRequest.c")
    headers = {"Authorization": f"Bearer {response.get_json()['access_token']}"}
    from tests.api.helpers import post_bundle, referral_bundle

    assert post_bundle(client, headers, referral_bundle(clinician_a.npi)).status_code == 200
    assert client.get("/fhir/Task", headers=headers).status_code == 403
