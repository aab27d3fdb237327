"""Candidate production changes, patched into the ingest app at start-up for measurement only.

`bench_ingest.py --proposal NAME` serves the real app through `bare_app.py --app lytics`,
which calls `apply()` before `create_app()`. Nothing here edits production files; each
patch is the smallest faithful stand-in for the change described in docs/benchmarks.md.

Also here: the statements the writer has used, for `bench_ingest.py --diagnostics`.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

from lytics_ingest_api.events.normalize import EventRow

COLUMNS: tuple[str, ...] = tuple(EventRow.__slots__)

# The writer's statement until commit b45787a: one INSERT binding one array per column.
# With `%s` psycopg sends lists of str in text format and escapes every element in
# Python (a regex substitution per quote of the JSON payload); `%b` sends them in binary.
UNNEST_INSERT = """
INSERT INTO raw.events (
    project_id, message_id, type, event, anonymous_id, user_id, session_id,
    timestamp, original_timestamp, sent_at, received_at, timestamp_clamped,
    url, path, referrer, utm_source, utm_medium, utm_campaign, ip, user_agent,
    source, payload)
SELECT project_id, message_id, type, event, anonymous_id, user_id, session_id,
    timestamp, original_timestamp, sent_at, received_at, timestamp_clamped,
    url, path, referrer, utm_source, utm_medium, utm_campaign, ip, user_agent,
    source, payload::jsonb
FROM unnest(
    %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
    %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::bool[],
    %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
    %s::text[], %s::text[], %s::text[]
) AS t(project_id, message_id, type, event, anonymous_id, user_id, session_id,
    timestamp, original_timestamp, sent_at, received_at, timestamp_clamped,
    url, path, referrer, utm_source, utm_medium, utm_campaign, ip, user_agent,
    source, payload)
ON CONFLICT (project_id, message_id) DO NOTHING
RETURNING project_id, message_id
"""
UNNEST_INSERT_BINARY = UNNEST_INSERT.replace("%s", "%b")


def columns_of(rows: list[Any]) -> list[list[Any]]:
    """EventRows (or rows as lists in COLUMNS order) as one list per column."""
    if rows and isinstance(rows[0], EventRow):
        return [[getattr(row, name) for row in rows] for name in COLUMNS]
    return [[row[i] for row in rows] for i in range(len(COLUMNS))]


def _unnest_binary() -> None:
    """The writer as one INSERT .. unnest(%b arrays) in a transaction (BEGIN, INSERT, COMMIT)."""
    from lytics_ingest_api.events import writer

    async def _insert(self: Any, rows: list[EventRow]) -> set[tuple[int, str]]:
        async with self._pool.connection() as conn, conn.transaction():
            cur = await conn.execute(UNNEST_INSERT_BINARY, columns_of(rows))
            return {(pid, mid) for pid, mid in await cur.fetchall()}

    setattr(writer.EventWriter, "_insert", _insert)  # noqa: B010


def _unnest_binary_autocommit() -> None:
    """The same single statement in autocommit: no BEGIN/COMMIT round trips. One statement
    is its own transaction, and `execute` returns after its commit, as before."""
    from lytics_ingest_api.events import writer

    async def _insert(self: Any, rows: list[EventRow]) -> set[tuple[int, str]]:
        async with self._pool.connection() as conn:
            if not conn.autocommit:
                await conn.set_autocommit(True)
            cur = await conn.execute(UNNEST_INSERT_BINARY, columns_of(rows))
            return {(pid, mid) for pid, mid in await cur.fetchall()}

    setattr(writer.EventWriter, "_insert", _insert)  # noqa: B010


def _no_pool_check() -> None:
    """No liveness round trip on every pool checkout (the upper bound of checking less)."""
    from lytics_ingest_api import app as app_module

    make_pool = getattr(app_module, "ingest_pool")  # noqa: B009 - a patch, not an API

    def ingest_pool(settings: Any) -> Any:
        pool = make_pool(settings)
        pool._check = None  # psycopg_pool's private field: a benchmark patch only
        return pool

    setattr(app_module, "ingest_pool", ingest_pool)  # noqa: B010


def _no_observability() -> None:
    """Attribution only, not a proposal: the request-id/Prometheus/log middleware removed."""
    from litestar.types import ASGIApp

    from lytics_ingest_api import app as app_module
    from lytics_ingest_api import fast_path

    def passthrough(app: ASGIApp) -> ASGIApp:  # Litestar calls it with app=...
        return app

    setattr(app_module, "observability_middleware", passthrough)  # noqa: B010
    setattr(fast_path, "observability_middleware", passthrough)  # noqa: B010


def _gc_freeze() -> None:
    """Applied after create_app(): what exists at start-up leaves the collector's sight,
    so a full collection no longer walks the ~100k objects of the loaded app."""
    gc.freeze()


BEFORE_CREATE: dict[str, Callable[[], None]] = {
    "unnest-binary": _unnest_binary,
    "unnest-binary-autocommit": _unnest_binary_autocommit,
    "no-pool-check": _no_pool_check,
    "no-observability": _no_observability,
}
AFTER_CREATE: dict[str, Callable[[], None]] = {"gc-freeze": _gc_freeze}
NAMES = (*BEFORE_CREATE, *AFTER_CREATE)


def apply(names: list[str], create: Callable[[], Any]) -> Any:
    """Patch, build the app with `create`, then apply what must follow start-up."""
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        raise ValueError(f"unknown proposals: {unknown}")
    for name in names:
        if name in BEFORE_CREATE:
            BEFORE_CREATE[name]()
    app = create()
    for name in names:
        if name in AFTER_CREATE:
            AFTER_CREATE[name]()
    return app
