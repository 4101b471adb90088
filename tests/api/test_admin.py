"""Admin pages: register an EHR for an organization, refuse bad keys, change scopes, disable."""

import json

from sqlalchemy import select

from portal.api.models import ApiClient
from portal.extensions import db
from tests.api.helpers import ec_key, public_jwks, rsa_key, token_request


def test_admin_registers_and_disables_a_client(client, login_as, org_a):
    login_as("admin")
    page = client.get("/admin/api-clients")
    assert page.status_code == 200
    response = client.post(
        "/admin/api-clients",
        data={
            "name": "Epic at Org A",
            "organization": str(org_a.public_id),
            "jwks": public_jwks(rsa_key(), ec_key()),
            "scopes": ["system/Task.read", "system/ServiceRequest.write"],
        },
    )
    assert response.status_code == 302
    registered = db.session.scalar(select(ApiClient))
    assert registered.organization_id == org_a.id and registered.scope_set == {
        "system/Task.read",
        "system/ServiceRequest.write",
    }
    assert client.get(response.headers["Location"]).status_code == 200
    assert token_request(client, registered).status_code == 200
    response = client.post(
        f"/admin/api-clients/{registered.public_id}",
        data={"jwks": json.dumps(registered.jwks), "scopes": ["system/Task.read"]},
    )  # is_enabled unticked
    assert response.status_code == 302
    db.session.refresh(registered)
    assert not registered.is_enabled
    assert token_request(client, registered).get_json()["error"] == "unauthorized_client"


def test_private_keys_and_garbage_are_refused(client, login_as, org_a):
    login_as("admin")
    base = {"name": "EHR", "organization": str(org_a.public_id), "scopes": ["system/Task.read"]}
    private = json.dumps({"keys": [rsa_key().as_dict(private=True)]})
    for jwks, message in (
        (private, b"private key"),
        ("{not json", b"not valid JSON"),
        ('{"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "kid": "x"}]}', b"RSA"),
        ("", b"public keys"),
    ):
        response = client.post("/admin/api-clients", data={**base, "jwks": jwks})
        assert response.status_code == 422 and message in response.data, message
    assert db.session.scalar(select(ApiClient)) is None


def test_jwks_url_must_be_https(client, login_as, org_a):
    login_as("admin")
    response = client.post(
        "/admin/api-clients",
        data={"name": "EHR", "organization": str(org_a.public_id), "jwks_url": "http://ehr.example/jwks", "scopes": []},
    )
    assert response.status_code == 422 and b"https" in response.data
