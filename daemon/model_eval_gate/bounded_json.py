"""JSON read under limits: size, nesting depth, integer length, no duplicate keys.

Python's json module is happy to build a 95 MiB object with a million keys,
to keep the last of two equal keys without a word, to recurse until
RecursionError on a document nested 5000 deep, and to hand int() a
5000-digit number that then raises ValueError past Python's digit limit.
Everything the gate reads from an author (a registration file, metadata
stored in the database) goes through load_bounded instead, which refuses each
of those with a JsonLimitError that says which limit and by how much.

Depth counts nested containers: {} and [] are depth 1, {"a": [1]} is 2.
The depth is measured on the text before parsing (strings removed, brackets
counted), so no recursion happens on a document that is too deep.
"""
from __future__ import annotations

import itertools
import json
import re
from typing import Any

# The documented limits (docs/sandbox.md, "Size caps"); the database holds
# artifacts.metadata to the same size and depth (migration 0010).
MAX_METADATA_BYTES = 256 * 1024
MAX_JSON_DEPTH = 32
MAX_INTEGER_DIGITS = 40  # any count or id fits; a 5000-digit "parameter count" does not

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class JsonLimitError(ValueError):
    """A JSON document over one of the limits, or with a key twice in one object."""


def json_depth(data: bytes) -> int:
    """The container nesting depth of a JSON text, without parsing it (linear in its length)."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(0, max(itertools.accumulate(_STEP[c] for c in brackets)))


def value_depth(value: Any) -> int:
    """The container nesting depth of a parsed value, iteratively (no recursion)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH * 4:  # far past any limit: stop measuring
            return depth
        pending.extend((child, depth + 1) for child in children)
    return deepest


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            shown = key if len(key) <= 60 else key[:57] + "..."
            raise JsonLimitError(f"the key {shown!r} appears twice in one object; JSON keys must be unique")
        result[key] = value
    return result


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise JsonLimitError(f"an integer has {digits} digits, over the limit of {MAX_INTEGER_DIGITS}")
    return int(text)


def load_bounded(data: bytes | str, *, max_bytes: int = MAX_METADATA_BYTES, max_depth: int = MAX_JSON_DEPTH,
                 what: str = "the document") -> Any:
    """Parse JSON text under the limits (NaN and Infinity are left to the caller); raises JsonLimitError (a ValueError) naming the one exceeded.

    json.JSONDecodeError (also a ValueError) still reports malformed text.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise JsonLimitError(f"{what} is {len(raw)} bytes, over the limit of {max_bytes} bytes")
    depth = json_depth(raw)
    if depth > max_depth:
        raise JsonLimitError(f"{what} is nested {depth} deep, over the limit of {max_depth}")
    text = data if isinstance(data, str) else raw.decode("utf-8")
    # NaN and Infinity parse, so that validation can name where they are.
    return json.loads(text, object_pairs_hook=_refuse_duplicates, parse_int=_bounded_int)


def check_value(value: Any, *, max_bytes: int = MAX_METADATA_BYTES, max_depth: int = MAX_JSON_DEPTH,
                what: str = "the value") -> str | None:
    """Why an already parsed value is over the limits (as the database would store it), or None."""
    depth = value_depth(value)
    if depth > max_depth:
        return f"{what} is nested {depth} deep, over the limit of {max_depth}"
    try:
        size = len(json.dumps(value, default=str).encode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError) as exc:
        return f"{what} cannot be serialised as JSON: {exc}"
    if size > max_bytes:
        return f"{what} is {size} bytes as JSON, over the limit of {max_bytes} bytes"
    return None


class UnreadableJson(dict):
    """Stands in (as an empty object) for a stored JSON value Python cannot load; `problem` says why.

    Rows written before the database's CHECK existed can hold metadata nested
    thousands deep or numbers thousands of digits long. Loading them raised
    RecursionError or ValueError inside psycopg and broke every later gate of
    the lineage (its head's metadata is read each time) and force-promote.
    """

    def __init__(self, problem: str):
        super().__init__()
        self.problem = problem


def loads_from_database(data: bytes | str) -> Any:
    """json.loads for psycopg's json/jsonb loader: an UnreadableJson instead of a crash."""
    try:
        return json.loads(data)
    except RecursionError:
        return UnreadableJson("stored JSON is nested too deep for Python to load")
    except ValueError as exc:  # an integer past Python's digit limit
        return UnreadableJson(f"stored JSON cannot be loaded: {exc}")
