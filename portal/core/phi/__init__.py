"""PHI field-level encryption: keyring, encrypted model fields, blind indexes, documents.

Declaring::

    class Patient(PkMixin, TimestampMixin, db.Model):
        family_name = encrypted(str)
        birth_date = encrypted(date)
        name_dob_bidx = blind_index(family_name=normalize.name, birth_date=normalize.iso_date)

Looking up: ``select(Patient).where(blind_match(Patient.name_dob_bidx, "Muñoz", dob))``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
from flask import Flask

from portal.core.phi import keyfile, normalize
from portal.core.phi.codecs import Codec
from portal.core.phi.documents import DocumentStore, documents
from portal.core.phi.errors import (
    DecryptionError,
    FileIntegrityError,
    FileTooLargeError,
    KeyringError,
    KeyringMissingError,
    PhiError,
    UnknownKeyError,
)
from portal.core.phi.fields import EncryptedField, blind_index, encrypted
from portal.core.phi.kek import KeyEncryptionKey, LocalKeyEncryptionKey
from portal.core.phi.keyring import Keyring
from portal.core.phi.registry import blind_match, encrypted_models, present_models
from portal.core.phi.runtime import EXTENSION_KEY, PhiState, current_state, using

__all__ = [
    "Codec",
    "DecryptionError",
    "DocumentStore",
    "EncryptedField",
    "FileIntegrityError",
    "FileTooLargeError",
    "KeyEncryptionKey",
    "Keyring",
    "KeyringError",
    "KeyringMissingError",
    "LocalKeyEncryptionKey",
    "PhiError",
    "PhiState",
    "UnknownKeyError",
    "blind_index",
    "blind_match",
    "current_state",
    "documents",
    "encrypted",
    "encrypted_models",
    "init_app",
    "normalize",
    "present_models",
    "using",
]

log = logging.getLogger(__name__)
AUTO_CREATE_ENVS = ("development", "test")
INIT_HINT = ": create it with `flask phi init-keyring`, back it up, and keep PHI_KEK apart from the backup"


def init_app(app: Flask) -> PhiState:
    """Open the keyring (creating one only in development/test) and register `flask phi`."""
    from portal.core.phi.cli import phi_group

    env = app.config.get("PORTAL_ENV", "production")
    path = Path(app.config.get("PHI_KEYRING_PATH") or Path(app.instance_path) / "keyring.bin")
    upload_dir = Path(app.config.get("UPLOAD_DIR") or Path(app.instance_path) / "uploads")
    # A KMS-backed KeyEncryptionKey object can be configured instead of the PHI_KEK string.
    kek = app.config.get("PHI_KEY_ENCRYPTION_KEY") or LocalKeyEncryptionKey.from_setting(
        app.config.get("PHI_KEK"), strict=env == "production"
    )
    keyring = _open_keyring(path, kek, env)
    state = PhiState(keyring, path=path, kek=kek, upload_dir=upload_dir, missing_hint=INIT_HINT)
    app.extensions[EXTENSION_KEY] = state
    app.before_request(state.poll)
    app.cli.add_command(phi_group)
    return state


def _open_keyring(path: Path, kek: KeyEncryptionKey, env: str) -> Keyring | None:
    try:
        return keyfile.load(path, kek)
    except KeyringMissingError:
        if env not in AUTO_CREATE_ENVS:
            if click.get_current_context(silent=True) is not None:
                # Inside `flask ...`: let `flask phi init-keyring` (and e.g. `db upgrade`) run;
                # anything that touches PHI still fails with the same message.
                return None
            raise KeyringMissingError(f"no PHI keyring at {path}{INIT_HINT}") from None
    with keyfile.locked(path):  # several workers may start at once: one creates, others load
        if path.exists():
            return keyfile.load(path, kek)
        keyring = Keyring.generate()
        keyfile.save(path, kek, keyring)
    log.warning("created a new %s PHI keyring at %s", env, path)
    return keyring
