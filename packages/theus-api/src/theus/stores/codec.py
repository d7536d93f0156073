"""The durable value format (spec/21-durability.md §2): tagged JSON, no pickle.

``encode(value, path)`` turns a state value into JSON text; ``decode(text, where)`` reads it
back. Only the types listed in spec/21 are accepted; anything else is refused when written
(``TypeError`` naming the path) and an unknown or malformed tag is refused when read
(:class:`theus.errors.StoreCorruptError` naming the run and version), so a tampered row can
never build an arbitrary object. Heavy-zone values are never stored (refused).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import StoreCorruptError
from ..paths import Path, format_path
from ..zones import Zone, zone_of_key

__all__ = [
    "FORMAT",
    "MAX_NESTING",
    "apply_delta",
    "decode",
    "decode_value",
    "encode",
    "encode_value",
    "json_text",
]

#: the format number written in every run row; a reader refuses another number
FORMAT = 1
#: how deep a value may nest (maps, lists, tuples, frozensets counted) below its path
MAX_NESTING = 400

_TAG = "$"


def _refuse(path: Path, what: str) -> TypeError:
    return TypeError(
        f"cannot store {format_path(path) or 'the value'!r} durably: {what} "
        "(the durable format, spec/21, takes None, bool, int, float, str, bytes, list, tuple, "
        "dict with str keys, frozenset, set, datetime, date, time, timedelta, Decimal, UUID)"
    )


def encode_value(value: Any, path: Path = (), zoned: bool = True) -> Any:
    """``value`` as plain JSON data (tags for the non-JSON types); ``TypeError`` naming the
    path for a value outside the format. ``zoned``: ``path`` is a state path whose zone is
    still undecided (keys below it with a ``heavy_`` prefix are refused)."""
    return _enc(value, path, zoned, 0)


def _enc(value: Any, path: Path, zoned: bool, depth: int) -> Any:
    if depth > MAX_NESTING:
        raise _refuse(path, f"the value nests deeper than {MAX_NESTING} levels")
    t = type(value)
    if value is None or t is str or t is bool or t is int:
        return value
    if t is float:
        if math.isfinite(value):
            return value
        return {_TAG: "float", "v": "nan" if value != value else ("inf" if value > 0 else "-inf")}
    if t is dict or (isinstance(value, Mapping) and t is not tuple):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _refuse(path, f"a map key {key!r} is not a str")
            child = (*path, key)
            sub = zoned
            if zoned:
                zone = zone_of_key(key)
                if zone is Zone.HEAVY:
                    raise _refuse(
                        child,
                        "heavy values are not stored (keep them outside the "
                        "store and put a reference in the data zone)",
                    )
                sub = zone is None
            out[key] = _enc(item, child, sub, depth + 1)
        if _TAG in out:
            return {_TAG: "map", "v": out}
        return out
    if (
        t is tuple
        or t is list
        or t is frozenset
        or t is set
        or (isinstance(value, Sequence) and t not in (bytes, bytearray, str))
    ):
        items = []
        for i, item in enumerate(value):  # a loop, not a comprehension: one frame per level
            items.append(_enc(item, (*path, str(i)), zoned, depth + 1))
        if t is tuple:
            return {_TAG: "tuple", "v": items}
        if t is not frozenset and t is not set:
            return items
        items.sort(key=lambda v: json.dumps(v, sort_keys=True))
        return {_TAG: "frozenset", "v": items}
    if t is bytes:
        return {_TAG: "bytes", "v": base64.b64encode(value).decode("ascii")}
    if t is datetime.datetime:
        return {_TAG: "datetime", "v": value.isoformat()}
    if t is datetime.date:
        return {_TAG: "date", "v": value.isoformat()}
    if t is datetime.time:
        return {_TAG: "time", "v": value.isoformat()}
    if t is datetime.timedelta:
        return {_TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if t is decimal.Decimal:
        return {_TAG: "decimal", "v": str(value)}
    if t is uuid.UUID:
        return {_TAG: "uuid", "v": str(value)}
    raise _refuse(path, f"values of type {t.__module__}.{t.__qualname__} are not in the format")


def encode(value: Any, path: Path = (), zoned: bool = True) -> str:
    """``value`` as JSON text of the durable format (compact, keys in order)."""
    return json_text(encode_value(value, path, zoned))


def json_text(data: Any) -> str:
    """Already-encoded data (:func:`encode_value`) as compact JSON text."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _no_constant(name: str) -> Any:
    raise ValueError(f"the JSON constant {name} is not part of the durable format")


def decode(text: str | bytes, where: str) -> Any:
    """Read JSON text of the durable format back into values.

    ``where`` names the row for errors ("run 'r' version 3"): any malformed text, unknown tag
    or wrong shape raises :class:`StoreCorruptError` naming it. Nothing but the types of the
    format is ever built."""
    try:
        data = json.loads(text, parse_constant=_no_constant)
        return _dec(data, 0)
    except StoreCorruptError as exc:
        raise StoreCorruptError(f"{where}: {exc}") from None
    except (ValueError, TypeError, RecursionError, OverflowError, decimal.InvalidOperation) as exc:
        raise StoreCorruptError(f"{where}: unreadable stored value ({exc})") from None


def decode_value(data: Any, where: str) -> Any:
    """:func:`decode` of already-parsed JSON data."""
    try:
        return _dec(data, 0)
    except StoreCorruptError as exc:
        raise StoreCorruptError(f"{where}: {exc}") from None
    except (ValueError, TypeError, RecursionError, OverflowError, decimal.InvalidOperation) as exc:
        raise StoreCorruptError(f"{where}: unreadable stored value ({exc})") from None


def _dec(data: Any, depth: int) -> Any:
    if depth > MAX_NESTING + 1:
        raise StoreCorruptError(f"a stored value nests deeper than {MAX_NESTING} levels")
    t = type(data)
    if data is None or t is str or t is bool or t is int or t is float:
        return data
    if t is list:
        return _dec_list(data, depth)
    if t is not dict:
        raise StoreCorruptError(f"unexpected JSON value of type {t.__name__}")
    if _TAG not in data:
        return _dec_map(data, depth)
    if len(data) != 2 or "v" not in data:
        raise StoreCorruptError(f"malformed tagged value with keys {sorted(data)}")
    tag, v = data[_TAG], data["v"]
    if tag == "map" and type(v) is dict:
        return _dec_map(v, depth)
    if tag == "tuple" and type(v) is list:
        return tuple(_dec_list(v, depth))
    if tag == "frozenset" and type(v) is list:
        return frozenset(_dec_list(v, depth))
    if type(v) is str:
        if tag == "float" and v in ("nan", "inf", "-inf"):
            return float(v)
        if tag == "bytes":
            return base64.b64decode(v.encode("ascii"), validate=True)
        if tag == "datetime":
            return datetime.datetime.fromisoformat(v)
        if tag == "date":
            return datetime.date.fromisoformat(v)
        if tag == "time":
            return datetime.time.fromisoformat(v)
        if tag == "decimal":
            return decimal.Decimal(v)
        if tag == "uuid":
            return uuid.UUID(v)
    if tag == "timedelta" and type(v) is list and len(v) == 3 and all(type(x) is int for x in v):
        return datetime.timedelta(days=v[0], seconds=v[1], microseconds=v[2])
    raise StoreCorruptError(f"unknown or malformed tag {tag!r}")


def _dec_list(data: list[Any], depth: int) -> list[Any]:
    out = []
    for item in data:  # loops, not comprehensions: two frames per level at most
        out.append(_dec(item, depth + 1))
    return out


def _dec_map(data: dict[str, Any], depth: int) -> dict[str, Any]:
    out = {}
    for key, item in data.items():
        out[key] = _dec(item, depth + 1)
    return out


def apply_delta(tree: dict[str, Any], ops: Any, where: str) -> None:
    """Apply a version's stored delta (decoded) to a plain tree, in place.

    ``ops`` is the delta ``{"ops": [[kind, [segments...], value], ...], "signals": [...]}``
    of spec/21 §3. A path that does not fit the tree (a corrupt or foreign row) raises
    :class:`StoreCorruptError`."""
    if type(ops) is dict:
        ops = ops.get("ops")
    if type(ops) is not list:
        raise StoreCorruptError(f"{where}: the delta is not a list of operations")
    for op in ops:
        try:
            kind, path, value = op
            if type(path) is not list or not path or not all(type(s) is str for s in path):
                raise TypeError("bad path")
            parent: Any = tree
            for segment in path[:-1]:
                parent = parent[int(segment)] if type(parent) is list else parent[segment]
            last = path[-1]
            if kind == "set":
                if type(parent) is list:
                    index = int(last)
                    if index == len(parent):
                        parent.append(value)
                    else:
                        parent[index] = value
                else:
                    parent[last] = value
            elif kind == "delete":
                if type(parent) is list:
                    del parent[int(last)]
                else:
                    del parent[last]
            elif kind == "append":
                target = parent[int(last)] if type(parent) is list else parent[last]
                if type(target) is not list or type(value) is not list:
                    raise TypeError("append to a non-list")
                target.extend(value)
            else:
                raise ValueError(f"unknown operation {kind!r}")
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise StoreCorruptError(
                f"{where}: the stored operation {op!r:.200} does not apply ({exc!r})"
            ) from None
