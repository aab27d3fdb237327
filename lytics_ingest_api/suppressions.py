"""Identities a deletion request suppressed: their later events are answered and dropped.

Each project's set of SHA-256 identity hashes (app.identity_suppressions, written by
the pipeline's erasure) is cached for `key_cache_seconds`, like verified keys: a
request costs no query, and a new suppression takes effect within that time. A
project with none (nearly all) costs one dictionary lookup per request.
"""

from __future__ import annotations

import time

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from lytics.privacy.identities import identity_hash
from lytics_ingest_api.events.normalize import EventRow

HASHES = "SELECT identity_hash FROM app.identity_suppressions WHERE project_id = %s"


class Suppressions:
    def __init__(self, pool: AsyncConnectionPool[AsyncConnection], ttl_seconds: float) -> None:
        self._pool = pool
        self._ttl = ttl_seconds
        self._cache: dict[int, tuple[frozenset[bytes], float]] = {}

    async def of(self, project_id: int) -> frozenset[bytes]:
        now = time.monotonic()
        cached = self._cache.get(project_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self._pool.connection() as conn:
            cur = await conn.execute(HASHES, (project_id,))
            hashes = frozenset(bytes(row[0]) for row in await cur.fetchall())
        self._cache[project_id] = (hashes, now + self._ttl)
        return hashes


def suppressed(row: EventRow, hashes: frozenset[bytes]) -> bool:
    """Whether the event carries an identity of a person whose data was deleted."""
    return bool(
        (row.user_id and identity_hash("user_id", row.user_id) in hashes)
        or (row.anonymous_id and identity_hash("anonymous_id", row.anonymous_id) in hashes)
    )
