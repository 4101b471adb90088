"""Password hashing (Argon2id) and the NIST SP 800-63B password rules."""

import gzip
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

MIN_LENGTH = 12
MAX_LENGTH = 256  # long passphrases welcome; bounded so hashing cannot be a DoS lever

_COMMON_FILE = Path(__file__).parent / "data" / "common-passwords.txt.gz"


@cache
def _hasher(profile: str) -> PasswordHasher:
    if profile == "test":
        # Tests hash hundreds of passwords; production strength is not what they check.
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
    return PasswordHasher(type=Type.ID)  # RFC 9106 low-memory profile: t=3, m=64 MiB, p=4


def hasher() -> PasswordHasher:
    return _hasher(current_app.config.get("ARGON2_PROFILE", "default"))


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Verify, spending the same work when there is no hash, so timing reveals nothing."""
    ph = hasher()
    try:
        return ph.verify(stored_hash or _dummy_hash(ph), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return hasher().check_needs_rehash(stored_hash)


@cache
def _dummy_hash_for(ph_id: int, ph: PasswordHasher) -> str:
    return ph.hash("not-a-real-password-used-for-timing-only")


def _dummy_hash(ph: PasswordHasher) -> str:
    return _dummy_hash_for(id(ph), ph)


@cache
def common_passwords() -> frozenset[str]:
    """Django's list of 20,000 common passwords (Royce Williams, 2017), shipped with us."""
    with gzip.open(_COMMON_FILE, "rt", encoding="utf-8") as fh:
        return frozenset(line.strip().casefold() for line in fh if line.strip())


def password_problems(password: str, *, context: tuple[str, ...] = ()) -> list[str]:
    """Return reasons a password is refused (empty when acceptable). No composition rules."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"Use at least {MIN_LENGTH} characters; a passphrase of several words is easiest.")
    if len(password) > MAX_LENGTH:
        problems.append(f"Use at most {MAX_LENGTH} characters.")
    folded = password.casefold()
    if folded in common_passwords() or _is_repeated_common(folded):
        problems.append("This password appears in lists of common or breached passwords.")
    elif len(set(folded)) <= 2 or _is_sequence(folded):
        problems.append("Avoid repeated or sequential characters such as 'aaaa' or '1234'.")
    for word in context:
        word = word.casefold().strip()
        if len(word) >= 4 and word in folded:
            problems.append("Avoid your name, your e-mail address or the portal's name.")
            break
    return problems


def _is_repeated_common(text: str) -> bool:
    """'passwordpassword' is no stronger than 'password'."""
    for times in (2, 3, 4):
        if len(text) % times == 0:
            chunk = text[: len(text) // times]
            if chunk * times == text and chunk in common_passwords():
                return True
    return False


def _is_sequence(text: str) -> bool:
    steps = {ord(b) - ord(a) for a, b in zip(text, text[1:], strict=False)}
    # 9 -> 0 continues a digit run ("1234567890").
    return steps <= {1, -9} or steps <= {-1, 9}
