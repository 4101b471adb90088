"""Behind nginx the client's address comes from X-Forwarded-For, believed only from the proxies in
FORWARDED_ALLOW_IPS: the audit trail and the rate limiter see the client, and a client cannot pick
the address they see."""

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.ops.forwarded import client_address, parse_networks

PROXY = parse_networks("127.0.0.1, 10.0.0.0/8")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),  # nginx on the host
        ("127.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # the client's own header is ignored
        ("127.0.0.1", "203.0.113.9, 10.1.2.3", "203.0.113.9"),  # two proxies of ours
        ("198.51.100.7", "203.0.113.9", "198.51.100.7"),  # not a proxy of ours: its header means nothing
        ("127.0.0.1", "garbage, 203.0.113.9", "203.0.113.9"),
        ("127.0.0.1", "203.0.113.9, garbage", "127.0.0.1"),
        ("127.0.0.1", "2001:db8::7", "2001:db8::7"),
        ("127.0.0.1", None, "127.0.0.1"),
    ],
)
def test_the_client_is_the_first_address_from_the_right_that_is_no_proxy_of_ours(peer, forwarded, client):
    assert client_address(peer, forwarded, PROXY) == client


def test_star_trusts_every_peer():
    assert client_address("198.51.100.7", "203.0.113.9", parse_networks("*")) == "203.0.113.9"


def _failed_sign_in_address(client, **kwargs) -> str:
    client.post("/auth/login", data={"email": "nobody@example.com", "password": "wrong password!"}, **kwargs)
    from portal.extensions import db

    return db.session.scalars(
        select(AuditEvent.ip_address).where(AuditEvent.action == "auth.login_failed").order_by(AuditEvent.id.desc())
    ).first()


def test_the_audit_trail_records_the_forwarded_client(client, db):
    assert _failed_sign_in_address(client, headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"}) == "203.0.113.9"
    untrusted = {"REMOTE_ADDR": "198.51.100.7"}
    assert (
        _failed_sign_in_address(client, headers={"X-Forwarded-For": "203.0.113.9"}, environ_base=untrusted)
        == "198.51.100.7"
    )
