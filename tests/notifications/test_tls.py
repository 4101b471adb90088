"""STARTTLS and implicit TLS with a login, against aiosmtpd with a throwaway certificate for 127.0.0.1."""

import ipaddress
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import update

from portal.core.time import now_utc
from portal.notifications.models import OutboxMessage, OutboxState
from portal.notifications.services import enqueue
from portal.notifications.transports import SmtpTransport
from portal.notifications.worker import Worker
from tests.notifications.conftest import Mailbox, free_port

USER, PASSWORD = "portal", "correct horse"

# Implicit TLS: aiosmtpd cannot tell that the whole session is encrypted and warns about AUTH.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return d / "cert.pem", d / "key.pem"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok)


def server_context(certificate):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*certificate)
    return ctx


def client_context(certificate):
    return ssl.create_default_context(cafile=str(certificate[0]))


@pytest.fixture(params=["starttls", "tls"])
def tls_server(request, certificate):
    mailbox, port = Mailbox(), free_port()
    if request.param == "starttls":
        controller = Controller(
            mailbox,
            hostname="127.0.0.1",
            port=port,
            tls_context=server_context(certificate),
            require_starttls=True,
            authenticator=_authenticator,
            auth_required=True,
        )
    else:
        controller = Controller(
            mailbox,
            hostname="127.0.0.1",
            port=port,
            ssl_context=server_context(certificate),
            authenticator=_authenticator,
            auth_required=True,
            auth_require_tls=False,
        )
    controller.start()
    yield request.param, port, mailbox
    controller.stop()


def test_delivers_over_tls_with_a_login(db, tls_server, certificate, fast_policy):
    security, port, mailbox = tls_server
    message = enqueue("a@example.com", "mfa_reset")
    db.session.commit()
    transport = SmtpTransport(
        "127.0.0.1",
        port,
        security=security,
        username=USER,
        password=PASSWORD,
        timeout=5,
        ssl_context=client_context(certificate),
    )
    assert Worker(transport, fast_policy).run(once=True).sent == 1
    assert len(mailbox.messages) == 1
    db.session.refresh(message)
    assert message.state is OutboxState.SENT


def test_wrong_password_or_untrusted_certificate_is_a_failed_attempt(db, tls_server, certificate, fast_policy):
    """Issue 19: no session with the server is a failed attempt (counted, last_error, back-off)."""
    security, port, mailbox = tls_server
    message = enqueue("a@example.com", "mfa_reset")
    db.session.commit()
    wrong = SmtpTransport(
        "127.0.0.1",
        port,
        security=security,
        username=USER,
        password="nope",
        timeout=1,
        ssl_context=client_context(certificate),
    )
    untrusted = SmtpTransport("127.0.0.1", port, security=security, username=USER, password=PASSWORD, timeout=5)
    for attempts, transport in enumerate((wrong, untrusted), start=1):
        result = Worker(transport, fast_policy).run(once=True)
        assert result.unavailable and result.sent == 0
        db.session.refresh(message)
        assert (message.state, message.attempts) == (OutboxState.PENDING, attempts)
        assert message.last_error.startswith("unavailable: ")
        # Its back-off has passed: the next worker takes it again.
        db.session.execute(update(OutboxMessage).values(next_attempt_at=now_utc() - timedelta(seconds=1)))
        db.session.commit()
    assert mailbox.messages == []
