"""JSON text already encoded, sent to a `jsonb` column of a binary COPY without re-encoding.

psycopg's own binary jsonb dumper serializes a Python object; handed a string it
would store a JSON *string*. The writer's payloads are already JSON text, and
jsonb's binary input is a version byte followed by that text, so this dumper
sends exactly that. It is registered by oid only (`register_dumper(None, ...)`):
it applies where a COPY declares the column `jsonb` with `set_types`, and nowhere
else. Postgres parses and validates the text as it would for a text COPY.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.adapt import Dumper
from psycopg.postgres import types
from psycopg.pq import Format

JSONB_VERSION = b"\x01"


class JsonTextBinaryDumper(Dumper):
    format = Format.BINARY
    oid = types["jsonb"].oid

    def dump(self, obj: Any) -> bytes:
        text = obj if isinstance(obj, bytes) else str(obj).encode()
        return JSONB_VERSION + text


async def register(conn: AsyncConnection) -> None:
    """Pool `configure` callback: the writer's connections COPY payloads as jsonb text."""
    conn.adapters.register_dumper(None, JsonTextBinaryDumper)
