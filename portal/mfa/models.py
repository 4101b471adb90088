"""TOTP credentials (secret encrypted), passkeys (WebAuthn public keys), hashed recovery codes,
remembered browsers, and where passkeys are required."""

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


class WebauthnCredential(PkMixin, db.Model):
    """A passkey (WebAuthn public-key credential) registered by its user; several per user.

    Nothing here is secret or PHI: the authenticator keeps the private key, the portal keeps the
    public key (COSE) to check signatures. sign_count is the authenticator's counter as last
    seen: an assertion must raise it (unless the authenticator keeps none, i.e. always 0), so a
    cloned authenticator's counter going backwards is refused. last_used_at also makes a
    sign-in challenge good for one use (portal/mfa/services.py, _claim_assertion).
    """

    __tablename__ = "webauthn_credentials"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # At most 1023 bytes (WebAuthn Level 3, credential ID); unique across the portal.
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # Space-separated AuthenticatorTransport values ("internal hybrid"), hints for the browser.
    transports: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def transport_list(self) -> list[str]:
        return (self.transports or "").split()

    def __repr__(self) -> str:
        return f"<WebauthnCredential {self.public_id}>"


class PasskeyRequirement(db.Model):
    """Where signing in needs a passkey: one row per scope that requires it, none where it does not.

    organization_id NULL is the practice (its staff and admins, who belong to no organization);
    otherwise one partner organization's users. A row's presence is the whole policy, so turning
    it on twice at once or off twice at once is harmless (off deletes every row of the scope).
    """

    __tablename__ = "passkey_requirements"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
