"""A real SMTP server on loopback (aiosmtpd), whose behaviour each test chooses."""

import asyncio
import socket
import threading
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from portal.notifications.transports import SmtpTransport
from portal.notifications.worker import Policy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """An aiosmtpd handler. mode: accept | refuse_5xx | refuse_4xx | reject_data | slow | drop."""

    def __init__(self):
        self.mode = "accept"
        self.messages = []
        self.lock = threading.Lock()
        self.slow_seconds = 3.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.mode == "refuse_5xx":
            return "550 5.1.1 Mailbox unavailable"
        if self.mode == "refuse_4xx":
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.mode == "slow":
            await asyncio.sleep(self.slow_seconds)
        elif self.mode == "drop":
            server.transport.close()
            return "250 OK"
        elif self.mode == "reject_data":
            return "554 5.6.0 Message content rejected"
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK: queued"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [m["Message-ID"] for m in self.messages]


class SmtpServer:
    def __init__(self):
        self.mailbox = Mailbox()
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    def transport(self, timeout: float = 2) -> SmtpTransport:
        return SmtpTransport("127.0.0.1", self.port, security="none", timeout=timeout)


@pytest.fixture
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def fast_policy():
    """No waiting between attempts, small batches."""
    return Policy(max_attempts=3, backoff_seconds=60, backoff_max_seconds=3600, lease_seconds=60, batch_size=10)
