"""Model declarations: ``encrypted(str)`` fields and ``blind_index(...)`` columns.

``family_name = encrypted(str)`` adds a mapped ``family_name_ct`` LargeBinary column and
makes ``family_name`` a descriptor: assigning encrypts at once (bound to the row's
``public_id``, assigned here if still unset), reading decrypts and caches the plaintext
on the instance for as long as the ciphertext object stays the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, overload

from sqlalchemy import LargeBinary
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import MappedColumn, mapped_column

from portal.core.phi.blind import INDEX_LEN, BlindIndexer, message
from portal.core.phi.cipher import ColumnCipher
from portal.core.phi.codecs import Codec, codec_for
from portal.core.phi.errors import DecryptionError, UnknownKeyError
from portal.core.phi.keyring import Keyring
from portal.core.phi.runtime import current_keyring, current_state

T = TypeVar("T")
CT_SUFFIX = "_ct"
INDEXES_ATTR = "__phi_blind_indexes__"


@dataclass(slots=True)
class _FieldContext:
    """What a field needs per mapped class, resolved once: names, dependent indexes, cipher cache."""

    table: str
    column: str
    indexes: list[BlindIndex]
    cached: tuple[Keyring, ColumnCipher] | None = None


class EncryptedField(Generic[T]):
    """Descriptor for one encrypted attribute; the ciphertext lives in the ``<name>_ct`` column."""

    def __init__(
        self,
        codec: Codec,
        *,
        nullable: bool,
        context: str | None,
        check: Callable[[Any], None] | None,
    ) -> None:
        self.codec = codec
        self.nullable = nullable
        self.check = check
        self._context = context
        # Bytes, not base64 text: BLOB on SQLite, BYTEA on PostgreSQL.
        self.column: MappedColumn[Any] = mapped_column(LargeBinary, nullable=nullable)
        self.name = ""
        self.ct_key = ""
        self._cache_key = ""
        self._contexts: dict[type, _FieldContext] = {}

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.ct_key = name + CT_SUFFIX
        self._cache_key = "_phi_plain_" + name
        setattr(owner, self.ct_key, self.column)

    def context_for(self, cls: type) -> _FieldContext:
        ctx = self._contexts.get(cls)
        if ctx is None:
            if self._context:
                table, column = self._context.split(".", 1)
            else:
                table = sa_inspect(cls).columns[self.ct_key].table.name
                column = self.name
            indexes = [ix for ix in blind_indexes(cls) if self.name in ix.sources]
            ctx = self._contexts[cls] = _FieldContext(table, column, indexes)
        return ctx

    def cipher(self, ctx: _FieldContext) -> ColumnCipher:
        keyring = current_keyring()
        cached = ctx.cached
        if cached is not None and cached[0] is keyring:
            return cached[1]
        cached = ctx.cached = (keyring, keyring.column_cipher(ctx.table, ctx.column))
        return cached[1]

    @overload
    def __get__(self, instance: None, owner: type) -> EncryptedField[T]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...

    def __get__(self, instance: object | None, owner: type) -> Any:
        if instance is None:
            return self
        state = instance.__dict__
        # A loaded column sits in __dict__; only an expired or deferred one needs the ORM to load it.
        blob = state[self.ct_key] if self.ct_key in state else getattr(instance, self.ct_key)
        if blob is None:
            return None
        cached = state.get(self._cache_key)
        if cached is None or cached[0] is not blob:
            cached = (blob, self.decrypt(type(instance), _row_id(instance), blob))
            state[self._cache_key] = cached
        # Mutable values (dict, list) are cached as bytes and decoded per read, so an in-place
        # edit cannot diverge silently from what is stored: assign a new value to change it.
        return self.codec.decode(cached[1]) if self.codec.mutable else cached[1]

    def __set__(self, instance: object, value: T | None) -> None:
        ctx = self.context_for(type(instance))
        if value is None:
            if not self.nullable:
                raise ValueError(f"{ctx.table}.{ctx.column} is required")
            instance.__dict__.pop(self._cache_key, None)
            setattr(instance, self.ct_key, None)
        else:
            if not isinstance(value, self.codec.accepts):
                raise TypeError(f"{ctx.table}.{ctx.column} expects {self.codec.name}, not {type(value).__name__}")
            if self.check is not None:
                self.check(value)
            row_id = _row_id(instance) or assign_public_id(instance)
            plaintext = self.codec.encode(value)
            blob = self.cipher(ctx).encrypt(row_id, plaintext)
            setattr(instance, self.ct_key, blob)
            instance.__dict__[self._cache_key] = (blob, plaintext if self.codec.mutable else value)
        for index in ctx.indexes:
            index.refresh(instance)

    def encrypt(self, cls: type, row_id: uuid.UUID, value: T) -> bytes:
        """Encode and encrypt one value for a row of ``cls`` (what assignment does, minus the ORM)."""
        return self.cipher(self.context_for(cls)).encrypt(row_id, self.codec.encode(value))

    def decrypt(self, cls: type, row_id: uuid.UUID | None, blob: bytes) -> Any:
        """Authenticate and decode one stored value (raw bytes for mutable codecs)."""
        ctx = self.context_for(cls)
        if row_id is None:
            raise DecryptionError(ctx.table, ctx.column, None, "row has no public_id")
        try:
            plaintext = self.cipher(ctx).decrypt(row_id, blob)
        except UnknownKeyError:
            # Another host may have added a key since we loaded ours: re-read once, never guess.
            if not current_state().reload_if_changed():
                raise
            plaintext = self.cipher(ctx).decrypt(row_id, blob)
        return plaintext if self.codec.mutable else self.codec.decode(plaintext)

    def __repr__(self) -> str:
        return f"<EncryptedField {self.name} ({self.codec.name})>"


def _row_id(instance: Any) -> uuid.UUID | None:
    # Loaded rows carry public_id in their __dict__: skip the instrumented attribute's overhead.
    row_id = instance.__dict__.get("public_id")
    return row_id if row_id is not None else instance.public_id


def assign_public_id(instance: Any) -> uuid.UUID:
    """The AAD binds to public_id, whose column default fires only at flush: set it now."""
    instance.public_id = uuid.uuid4()
    return instance.public_id


@overload
def encrypted(
    python_type: type[T],
    *,
    nullable: Literal[False] = ...,
    context: str | None = ...,
    check: Callable[[T], None] | None = ...,
) -> EncryptedField[T]: ...
@overload
def encrypted(
    python_type: type[T],
    *,
    nullable: Literal[True],
    context: str | None = ...,
    check: Callable[[T], None] | None = ...,
) -> EncryptedField[T | None]: ...


def encrypted(
    python_type: Any,
    *,
    nullable: bool = False,
    context: str | None = None,
    check: Callable[[Any], None] | None = None,
) -> Any:
    """Declare an encrypted attribute: ``birth_date = encrypted(date)``.

    The model needs an immutable ``public_id`` UUID (PkMixin): values are bound to it.
    When constructing with an explicit ``public_id``, pass it before encrypted fields.
    ``context="table.column"`` pins the names bound into keys and AAD, so a later rename
    of the table or attribute does not orphan stored values.
    """
    return EncryptedField(codec_for(python_type), nullable=nullable, context=context, check=check)


class BlindIndex:
    """Declares an indexed HMAC column over one or more encrypted fields, kept in sync on assignment."""

    def __init__(self, sources: dict[str, Callable[[Any], str]], context: str | None) -> None:
        if not sources:
            raise ValueError("blind_index() needs at least one source field")
        self.sources = tuple(sources)
        self.normalizers = tuple(sources.values())
        self._context = context
        self.column: MappedColumn[Any] = mapped_column(LargeBinary(INDEX_LEN), nullable=True, index=True)
        self.name = ""
        self._contexts: dict[type, tuple[str, str]] = {}
        self._cached: dict[tuple[str, str], tuple[Keyring, BlindIndexer]] = {}

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        # The class attribute becomes the mapped column (so queries use Patient.phone_bidx);
        # the declaration itself is kept in a per-class list for discovery.
        setattr(owner, name, self.column)
        if INDEXES_ATTR not in owner.__dict__:
            setattr(owner, INDEXES_ATTR, [])
        getattr(owner, INDEXES_ATTR).append(self)

    def names_for(self, cls: type) -> tuple[str, str]:
        names = self._contexts.get(cls)
        if names is None:
            if self._context:
                table, index = self._context.split(".", 1)
            else:
                table, index = sa_inspect(cls).columns[self.name].table.name, self.name
            names = self._contexts[cls] = (table, index)
        return names

    def indexer(self, cls: type) -> BlindIndexer:
        names = self.names_for(cls)
        keyring = current_keyring()
        cached = self._cached.get(names)
        if cached is None or cached[0] is not keyring:
            cached = self._cached[names] = (keyring, keyring.blind_indexer(*names))
        return cached[1]

    def message_for(self, values: tuple[Any, ...]) -> bytes | None:
        """The normalised HMAC input, or None when any part is missing or normalises to nothing."""
        if len(values) != len(self.sources):
            raise TypeError(f"{self.name} takes {len(self.sources)} values: {', '.join(self.sources)}")
        parts = []
        for normalize, value in zip(self.normalizers, values, strict=True):
            if value is None:
                return None
            part = normalize(value)
            if not part:
                return None
            parts.append(part)
        return message(parts)

    def refresh(self, instance: Any) -> None:
        msg = self.message_for(tuple(getattr(instance, s) for s in self.sources))
        value = None if msg is None else self.indexer(type(instance)).compute(msg)
        setattr(instance, self.name, value)

    def __repr__(self) -> str:
        return f"<BlindIndex {self.name} over {', '.join(self.sources)}>"


def blind_index(context: str | None = None, **sources: Callable[[Any], str]) -> Any:
    """Declare a blind index: ``phone_bidx = blind_index(phone=normalize.us_phone)``.

    Several keyword arguments make one combined index (argument order is significant).
    """
    return BlindIndex(sources, context)


def encrypted_fields(cls: type) -> list[EncryptedField[Any]]:
    """Every encrypted field of a class, its mixins and bases included, in declaration order."""
    seen: dict[str, EncryptedField[Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, EncryptedField):
                seen[name] = value
    return list(seen.values())


def blind_indexes(cls: type) -> list[BlindIndex]:
    seen: dict[str, BlindIndex] = {}
    for klass in reversed(cls.__mro__):
        for index in vars(klass).get(INDEXES_ATTR, ()):
            seen[index.name] = index
    return list(seen.values())
