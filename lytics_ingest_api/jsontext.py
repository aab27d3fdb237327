"""JSON values that Postgres can store, or the field that makes them unstorable.

Postgres refuses U+0000 in text and jsonb, and nothing downstream benefits from
JSON nested without bound, so both are client errors naming the field: a NUL
anywhere (a value or a key), and nesting deeper than the endpoint's limit
(`MAX_EVENT_DEPTH` for events and metric metadata; replay sets its own, since
DOM snapshots nest deeply). Finding the field walks the value, which is done only
when a cheap test on the encoded bytes says it can fail: the NUL escape is
present, or there are more brackets than the depth limit.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

import msgspec

_encode = msgspec.json.Encoder().encode
NUL_ESCAPE = b"\\u0000"
# Levels of nesting an event may have, the event object itself being level 1.
MAX_EVENT_DEPTH = 64
# Bytes that are not UTF-8, as `surrogateescape` decoding represents them.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
# Python's own bound on int parsing is 4300 digits; msgspec refuses far fewer.
_MAX_INT_DIGITS = 4000


class UnstorableJsonError(ValueError):
    """`field` (a path like `properties.items[2].name`) cannot be stored."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _path(parent: str, step: str | int) -> str:
    if isinstance(step, int):
        return f"{parent}[{step}]"
    return f"{parent}.{step}" if parent else step


def _children(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield _path(path, key), item
    else:
        for index, item in enumerate(value):
            yield _path(path, index), item


def _bad_text(text: str, field: str, what: str = "") -> UnstorableJsonError | None:
    if "\x00" in text:
        return UnstorableJsonError(field, f"{what}{field} contains a NUL (U+0000)")
    if _NOT_UTF8.search(text):
        return UnstorableJsonError(field, f"{what}{field} is not valid UTF-8")
    return None


def _bounded_int(digits: str) -> Any:
    return int(digits) if len(digits) <= _MAX_INT_DIGITS else math.inf


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def explain(data: bytes, max_depth: int, root: str = "") -> UnstorableJsonError | None:
    """Which field of `data` the fast decoder refused, when it is one: bytes that are not
    UTF-8, a number out of range, a NUL, nesting beyond `max_depth`. None for JSON that is
    plainly malformed (or too deep to parse at all). Only for answering errors: slow."""
    try:
        value = json.loads(
            data.decode("utf-8", "surrogateescape"),
            parse_int=_bounded_int,
            parse_constant=_no_constant,
        )
    except (ValueError, RecursionError):
        return None
    return find_unstorable(value, max_depth, root)


def find_unstorable(value: Any, max_depth: int, root: str = "") -> UnstorableJsonError | None:
    """The first NUL, non-UTF-8, out-of-range or over-deep part of `value`, walked without
    recursion."""
    stack: list[tuple[Any, str, int]] = [(value, root, 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            problem = _bad_text(item, path or "body")
            if problem is not None:
                return problem
            continue
        if isinstance(item, float) and not math.isfinite(item):
            return UnstorableJsonError(path or "body", f"{path or 'body'}: number out of range")
        if not isinstance(item, dict | list):
            continue
        if depth > max_depth:
            return UnstorableJsonError(
                path or "body", f"{path or 'body'} nests deeper than {max_depth} levels"
            )
        if isinstance(item, dict):
            for key in item:
                at = _path(path, key.replace("\x00", "\\u0000"))
                problem = _bad_text(key, at, "the key ")
                if problem is not None:
                    return problem
        stack.extend((child, at, depth + 1) for at, child in _children(item, path))
    return None


def may_be_unstorable(encoded: bytes, max_depth: int) -> bool:
    """False only if `encoded` surely holds no NUL and nests at most `max_depth` levels."""
    return NUL_ESCAPE in encoded or encoded.count(b"{") + encoded.count(b"[") > max_depth


def storable(value: Any, max_depth: int = MAX_EVENT_DEPTH, root: str = "") -> bytes:
    """`value`'s JSON encoding; `UnstorableJsonError` names a NUL or over-deep part."""
    try:
        encoded = _encode(value)
    except RecursionError:
        encoded = b"[" * (max_depth + 1)  # deeper than anything: the walk names where
    if may_be_unstorable(encoded, max_depth):
        problem = find_unstorable(value, max_depth, root)
        if problem is not None:
            raise problem
    return encoded


def jsonb_text(value: Any, max_depth: int = MAX_EVENT_DEPTH, root: str = "") -> str:
    return storable(value, max_depth, root).decode()
