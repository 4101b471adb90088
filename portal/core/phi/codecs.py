"""Plaintext codecs: how a Python value becomes the bytes that get encrypted, and back."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Codec:
    """Encodes one Python type; ``accepts`` is checked on assignment (error names the type only)."""

    name: str
    accepts: tuple[type, ...]
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    mutable: bool = False


def _encode_date(value: date) -> bytes:
    if isinstance(value, datetime):  # a datetime is a date subclass: refuse silent truncation
        raise TypeError("expected a date, got a datetime")
    return value.isoformat().encode("ascii")


def _encode_datetime(value: datetime) -> bytes:
    if value.tzinfo is None:
        raise TypeError("naive datetime refused: PHI timestamps are stored timezone-aware")
    return value.isoformat().encode("ascii")


def _encode_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


# C methods rather than lambdas: str/bytes default to UTF-8, and this runs once per value.
STR = Codec("str", (str,), str.encode, bytes.decode)
BYTES = Codec("bytes", (bytes,), bytes, bytes)
DATE = Codec("date", (date,), _encode_date, lambda b: date.fromisoformat(b.decode("ascii")))
DATETIME = Codec("datetime", (datetime,), _encode_datetime, lambda b: datetime.fromisoformat(b.decode("ascii")))
INT = Codec("int", (int,), lambda v: str(int(v)).encode("ascii"), lambda b: int(b))
JSON_DICT = Codec("dict", (dict,), _encode_json, json.loads, mutable=True)
JSON_LIST = Codec("list", (list,), _encode_json, json.loads, mutable=True)

_BY_TYPE: dict[type, Codec] = {
    str: STR,
    bytes: BYTES,
    date: DATE,
    datetime: DATETIME,
    int: INT,
    dict: JSON_DICT,
    list: JSON_LIST,
}


def codec_for(python_type: type | Codec) -> Codec:
    """The codec for a declared type; pass a Codec directly for anything custom."""
    if isinstance(python_type, Codec):
        return python_type
    try:
        return _BY_TYPE[python_type]
    except KeyError:
        names = ", ".join(t.__name__ for t in _BY_TYPE)
        raise TypeError(f"encrypted() supports {names} or a Codec, not {python_type!r}") from None
