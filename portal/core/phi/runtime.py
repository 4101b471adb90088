"""Where the code finds the keyring: the app's PHI state, or an explicit override."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from flask import current_app

try:  # the app-context variable itself: ~10x cheaper than the current_app proxy per value
    from flask.globals import _cv_app
except ImportError:  # pragma: no cover - older or future Flask: fall back to the proxy
    _cv_app = None

from portal.core.phi import keyfile
from portal.core.phi.errors import KeyringError, KeyringMissingError, PhiError
from portal.core.phi.kek import KeyEncryptionKey
from portal.core.phi.keyring import Keyring

log = logging.getLogger(__name__)
EXTENSION_KEY = "phi"
RELOAD_CHECK_SECONDS = 30.0


class PhiState:
    """One process's view of the keyring; it re-reads the file when another process changed it."""

    def __init__(
        self,
        keyring: Keyring | None,
        *,
        path: Path | None = None,
        kek: KeyEncryptionKey | None = None,
        upload_dir: Path | None = None,
        missing_hint: str = "",
    ) -> None:
        self._keyring = keyring
        self.path = path
        self.kek = kek
        self.upload_dir = upload_dir
        self._missing_hint = missing_hint
        self._lock = threading.Lock()
        self._mtime = self._stat()
        self._next_check = time.monotonic() + RELOAD_CHECK_SECONDS

    @property
    def keyring(self) -> Keyring:
        keyring = self._keyring
        if keyring is None:
            raise KeyringMissingError(f"no PHI keyring at {self.path}{self._missing_hint}")
        return keyring

    def poll(self) -> None:
        """Called once per request: other hosts' key changes arrive within RELOAD_CHECK_SECONDS.

        Kept off the per-value path on purpose; a value naming a key we do not know
        triggers an immediate re-read anyway (see EncryptedField.decrypt).
        """
        if time.monotonic() >= self._next_check:
            self.reload_if_changed()

    def reload_if_changed(self) -> bool:
        """Re-read the keyring file if its mtime moved; True when a new keyring was loaded."""
        with self._lock:
            self._next_check = time.monotonic() + RELOAD_CHECK_SECONDS
            mtime = self._stat()
            if self.path is None or self.kek is None or mtime is None or mtime == self._mtime:
                return False
            try:
                keyring = keyfile.load(self.path, self.kek)
            except KeyringError as exc:
                # E.g. the file was re-wrapped for a new KEK: keep serving with the keys we hold.
                log.warning("PHI keyring changed on disk but was not reloaded: %s", exc)
                self._mtime = mtime
                return False
            self._keyring, self._mtime = keyring, mtime
            return True

    def replace(self, keyring: Keyring) -> None:
        """Adopt a keyring this process just saved (the CLI), without waiting for the poll."""
        with self._lock:
            self._keyring = keyring
            self._mtime = self._stat()

    def _stat(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns if self.path else None
        except FileNotFoundError:
            return None

    def __repr__(self) -> str:
        return f"<PhiState {self.path} {self._keyring!r}>"


_override: ContextVar[PhiState | None] = ContextVar("phi_state_override", default=None)


def current_state() -> PhiState:
    """The PHI state in force: an explicit ``using()`` block first, else the current app's."""
    state = _override.get()
    if state is not None:
        return state
    if _cv_app is not None:
        ctx = _cv_app.get(None)
        if ctx is not None:
            try:
                return ctx.app.extensions[EXTENSION_KEY]
            except KeyError:
                raise PhiError("portal.core.phi.init_app(app) was not called for this app") from None
    try:
        return current_app.extensions[EXTENSION_KEY]
    except RuntimeError:
        raise PhiError("PHI fields need an app context (or portal.core.phi.using(...))") from None
    except KeyError:
        raise PhiError("portal.core.phi.init_app(app) was not called for this app") from None


def current_keyring() -> Keyring:
    """``current_state().keyring`` fused into one call: this runs for every value encrypted."""
    state = _override.get()
    if state is None and _cv_app is not None:
        ctx = _cv_app.get(None)
        if ctx is not None:
            state = ctx.app.extensions.get(EXTENSION_KEY)
    keyring = state._keyring if state is not None else None
    return keyring if keyring is not None else current_state().keyring


@contextmanager
def using(keyring_or_state: Keyring | PhiState) -> Iterator[PhiState]:
    """Use a given keyring outside Flask: scripts, benchmarks, pure unit tests."""
    state = keyring_or_state if isinstance(keyring_or_state, PhiState) else PhiState(keyring_or_state)
    token = _override.set(state)
    try:
        yield state
    finally:
        _override.reset(token)
