"""Discovery of encrypted columns from the mapped models, and blind-index lookups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, event, false
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapper
from sqlalchemy.orm import registry as Registry
from sqlalchemy.orm.attributes import InstrumentedAttribute
from sqlalchemy.orm.base import NEVER_SET, NO_VALUE

from portal.core.phi.fields import BlindIndex, EncryptedField, blind_indexes, encrypted_fields

_UNSET = (NO_VALUE, NEVER_SET)


@dataclass(frozen=True)
class EncryptedModel:
    """One mapped class with its encrypted fields and blind indexes, as rotation and status see it."""

    model: type
    table: Table
    fields: tuple[EncryptedField[Any], ...]
    indexes: tuple[BlindIndex, ...]

    @property
    def name(self) -> str:
        return self.table.name


def encrypted_models(registries: list[Registry] | Registry) -> list[EncryptedModel]:
    """Every mapped class with PHI, found from the mappers: no hand-kept list to forget."""
    if isinstance(registries, Registry):
        registries = [registries]
    found: dict[str, EncryptedModel] = {}
    for reg in registries:
        for mapper in sorted(reg.mappers, key=lambda m: m.class_.__name__):
            fields, indexes = encrypted_fields(mapper.class_), blind_indexes(mapper.class_)
            if not (fields or indexes) or not isinstance(mapper.local_table, Table):
                continue
            names = {f.name for f in fields}
            for ix in indexes:
                if not set(ix.sources) <= names:
                    raise TypeError(f"{mapper.class_.__name__}.{ix.name}: sources must be encrypted fields")
            # Single-table inheritance maps several classes onto one table: handle it once.
            found.setdefault(
                mapper.local_table.name,
                EncryptedModel(mapper.class_, mapper.local_table, tuple(fields), tuple(indexes)),
            )
    return list(found.values())


def present_models(
    connection: Connection, registries: list[Registry] | Registry
) -> tuple[list[EncryptedModel], list[str]]:
    """Split encrypted models into those whose table exists and the names of those not migrated yet."""
    existing = set(sa_inspect(connection).get_table_names())
    models = encrypted_models(registries)
    return [m for m in models if m.name in existing], [m.name for m in models if m.name not in existing]


def blind_match(column: InstrumentedAttribute[Any], *values: Any) -> ColumnElement[bool]:
    """SQL condition matching rows whose blind index equals that of ``values`` (normalised).

    ``select(Patient).where(blind_match(Patient.phone_bidx, "(312) 555-0142"))``
    """
    cls, key = getattr(column, "class_", None), getattr(column, "key", None) or getattr(column, "name", "?")
    spec = next((ix for ix in blind_indexes(cls) if ix.name == key), None) if cls is not None else None
    if spec is None:
        raise TypeError(f"{key} is not a blind index")
    msg = spec.message_for(values)
    if msg is None:
        return false()
    candidates = spec.indexer(cls).candidates(msg)
    return column == candidates[0] if len(candidates) == 1 else column.in_(candidates)


@event.listens_for(Mapper, "mapper_configured")
def _guard_public_id(mapper: Mapper[Any], cls: type) -> None:
    """Ciphertexts are bound to public_id: changing it would make every value undecryptable."""
    if not encrypted_fields(cls) or "public_id" not in mapper.attrs:
        return

    @event.listens_for(cls.public_id, "set", retval=False)
    def refuse_change(target: Any, value: Any, oldvalue: Any, initiator: Any) -> None:
        if oldvalue is not None and oldvalue not in _UNSET and oldvalue != value:
            raise AttributeError(f"{cls.__name__}.public_id is immutable: PHI is bound to it")
