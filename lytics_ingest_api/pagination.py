"""Keyset pagination for newest-first lists: an opaque cursor naming the last row shown.

A page is `ORDER BY received_at DESC, id DESC LIMIT n`; the next one continues after
`(received_at, id)` of the last row, which an index on `(project_id, received_at, id)`
finds directly, however deep the page. `id` breaks ties in `received_at`, so every row
appears exactly once across pages, and rows that arrive while a client pages do not
shift the pages it has not read yet (they appear before the first page).

The cursor is base64url of a small JSON array; clients pass it back unchanged and must
not build one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import msgspec

from lytics_ingest_api.errors import bad_request

CURSOR_FIELD = "cursor"


class Position(msgspec.Struct, array_like=True, frozen=True):
    """Where a page ended: the last row's arrival time and id."""

    received_at: datetime
    id: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]  # a bigint identity


_decoder = msgspec.json.Decoder(Position)


def encode(position: Position) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")


def decode(cursor: str | None) -> Position | None:
    """The position a cursor names; a cursor this API did not issue is a 400."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = _decoder.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise bad_request("not a cursor this API issued", field=CURSOR_FIELD) from exc
    if position.received_at.tzinfo is None:
        raise bad_request("not a cursor this API issued", field=CURSOR_FIELD)
    return position


def page(rows: Sequence[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """The first `limit` of `limit + 1` fetched rows, and the cursor after them (None: the end)."""
    shown = list(rows[:limit])
    if len(rows) <= limit:
        return shown, None
    last = shown[-1]
    return shown, encode(Position(last["received_at"], last["id"]))


def bounds(position: Position | None) -> dict[str, Any]:
    """The query parameters `before_at` and `before_id` (both None on the first page)."""
    if position is None:
        return {"before_at": None, "before_id": None}
    return {"before_at": position.received_at, "before_id": position.id}
