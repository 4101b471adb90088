"""TOTP credentials (secret encrypted), hashed recovery codes and remembered browsers."""

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import PkMixin, UTCDateTime
from portal.core.phi import encrypted
from portal.core.time import now_utc
from portal.extensions import db


class TotpCredential(PkMixin, db.Model):
    """An authenticator app. Unconfirmed until the user proves it with one code.

    The secret is AES-256-GCM ciphertext under the PHI keyring (bound to this row), so a
    database dump alone yields no usable secret. last_used_step makes each code single-use.
    """

    __tablename__ = "totp_credentials"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret = encrypted(bytes, context="totp_credentials.secret")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def is_confirmed(self) -> bool:
        return self.confirmed_at is not None

    def __repr__(self) -> str:
        return f"<TotpCredential {self.public_id}>"


class RecoveryCode(db.Model):
    """One single-use recovery code, stored as the SHA-256 of an 80-bit random code."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TrustedDevice(PkMixin, db.Model):
    """A browser that may skip the second factor until expires_at. The cookie holds a random
    token; only its digest is here."""

    __tablename__ = "trusted_devices"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip_address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(255))

    def __repr__(self) -> str:
        return f"<TrustedDevice {self.public_id}>"
