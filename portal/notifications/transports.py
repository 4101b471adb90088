"""Where e-mail goes: an SMTP server, or (in development) .eml files under instance/outbox/.

Failures are sorted into three kinds, because each asks for a different response:
``Unavailable`` (no server to talk to, or no session with it: nothing was sent; the worker
counts a failed attempt for every message it holds and backs them off, see worker.py),
``DeliveryError(permanent=False)`` (a 4xx reply, a time-out or a dropped connection
during one message: retry that message later) and ``DeliveryError(permanent=True)``
(a 5xx reply: the server will never take it; dead-letter it).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

SECURITY_MODES = ("none", "starttls", "tls")


class Unavailable(Exception):
    """The server could not be reached or refused the session; no message was attempted."""


class DeliveryError(Exception):
    def __init__(self, reason: str, *, permanent: bool):
        super().__init__(reason)
        self.reason = reason[:255]
        self.permanent = permanent


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {' '.join(text.split())}"


class SmtpTransport:
    """One SMTP session, opened on first use and reused for a batch."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30,
        ssl_context: ssl.SSLContext | None = None,
    ):
        if security not in SECURITY_MODES:
            raise ValueError(f"SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}")
        self.host, self.port, self.security = host, port, security
        self.username, self.password, self.timeout = username, password, timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._smtp: smtplib.SMTP | None = None

    @classmethod
    def from_config(cls, config) -> SmtpTransport:
        return cls(
            config["SMTP_HOST"],
            config["SMTP_PORT"],
            security=config["SMTP_SECURITY"],
            username=config.get("SMTP_USERNAME") or None,
            password=config.get("SMTP_PASSWORD") or None,
            timeout=config["SMTP_TIMEOUT"],
        )

    def describe(self) -> str:
        return f"SMTP {self.host}:{self.port} ({self.security})"

    def open(self) -> None:
        try:
            if self.security == "tls":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self.ssl_context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            try:
                smtp.ehlo()
                if self.security == "starttls":
                    smtp.starttls(context=self.ssl_context)
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self.password or "")
            except BaseException:
                smtp.close()
                raise
        except smtplib.SMTPResponseException as exc:
            raise Unavailable(_reply(exc.smtp_code, exc.smtp_error)) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise Unavailable(type(exc).__name__) from None
        self._smtp = smtp

    def send(self, message: EmailMessage) -> None:
        if self._smtp is None:
            self.open()
        try:
            self._smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            # smtplib has already reset the session; it stays usable.
            code, text = next(iter(exc.recipients.values()))
            raise DeliveryError(_reply(code, text), permanent=500 <= code < 600) from None
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, 4xx/5xx
            code = exc.smtp_code
            if code == 421 or code < 400:  # "service closing": the session is gone
                self._discard()
            raise DeliveryError(_reply(code, exc.smtp_error), permanent=500 <= code < 600) from None
        except (OSError, smtplib.SMTPException) as exc:  # time-out, dropped connection
            self._discard()
            raise DeliveryError(type(exc).__name__, permanent=False) from None

    def _discard(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def close(self) -> None:
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
        finally:
            self._discard()


class SinkTransport:
    """Development: write each message as an .eml file and say so on the console."""

    def __init__(self, directory: str | Path, echo=print):
        self.directory = Path(directory)
        self.echo = echo

    def describe(self) -> str:
        return f"the local sink {self.directory}/ (SMTP_HOST is not set)"

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def send(self, message: EmailMessage) -> None:
        self.open()
        name = message["Message-ID"].strip("<>").partition("@")[0]
        path = self.directory / f"{name}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(bytes(message))
        tmp.replace(path)  # a reader never sees half a message
        self.echo(f"outbox: e-mail to {message['To']} “{message['Subject']}” saved as {path}", flush=True)

    def close(self) -> None:
        pass


def transport_from_config(config, echo=print):
    if config.get("SMTP_HOST"):
        return SmtpTransport.from_config(config)
    return SinkTransport(config["OUTBOX_SINK_DIR"], echo=echo)
