"""Group commit for events: many requests, one COPY, then every answer.

Requests put their rows on a queue and wait. A few writer tasks each take
everything queued (up to `max_rows`), write it with one statement, and only
then resolve the waiting requests: a 2xx always means committed. Under light
load a batch is one request and nothing waits for a timer; under heavy load
batches grow on their own while the previous commit is in flight.

A failed batch is told apart by when it failed. Before its commit was sent,
nothing was stored (the database error is raised). After the commit was sent,
a lost connection leaves the outcome unknown: `CommitOutcomeUnknownError`; the
rows may be stored, and a retry is safe because (project, messageId) is unique.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from psycopg import AsyncConnection, InterfaceError, OperationalError
from psycopg.errors import FeatureNotSupported, UniqueViolation
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from lytics_ingest_api.events.normalize import EventRow
from lytics_ingest_api.observability import WRITER_BATCH_ROWS, WRITER_QUEUE_DEPTH, count_flush

log = logging.getLogger(__name__)

# Two ways into raw.events, both binary COPY (the API's CPU is the scarce resource,
# and binary spares the client formatting every value as text):
#
# direct  COPY straight into raw.events, on an autocommit connection: one statement,
#         one implicit transaction, committed before COPY's completion reaches us.
#         Every row of a batch that COPYs is new. COPY is all or nothing, so a single
#         duplicate (a retried request) fails the whole statement and the batch takes
#         the staging path instead. Postgres refuses COPY FROM to roles under
#         row-level security, so this needs a role with BYPASSRLS (migration 0007
#         grants it to lytics_ingest where the migrating user may; every policy of
#         that role is `true`, so it sees nothing more). Without it, the writer
#         notices once and stays on the staging path.
# staged  COPY into a per-connection temporary table, then one INSERT ... SELECT
#         ... ON CONFLICT DO NOTHING RETURNING, in one transaction: duplicates are
#         skipped by the unique key and RETURNING says which rows are new.
#
# Plain statements only (no server-side prepared statements), so both run through
# pgbouncer in transaction mode.
COLUMNS = EventRow.__slots__
_BINARY_TYPES = {
    "project_id": "int8",
    "timestamp": "timestamptz",
    "original_timestamp": "timestamptz",
    "sent_at": "timestamptz",
    "received_at": "timestamptz",
    "timestamp_clamped": "bool",
}
# The payload is staged as text and cast once in the INSERT; the direct COPY sends it
# as jsonb through `jsonb_copy.JsonTextBinaryDumper`. Postgres validates it either way.
STAGING_TYPES = [_BINARY_TYPES.get(name, "text") for name in COLUMNS]
DIRECT_TYPES = [
    "jsonb" if name == "payload" else kind
    for name, kind in zip(COLUMNS, STAGING_TYPES, strict=True)
]
COLUMN_LIST = ", ".join(COLUMNS)
_values = operator.attrgetter(*COLUMNS)  # a row's values in COLUMNS order, in one C call

COPY_EVENTS = f"COPY raw.events ({COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
# A name of its own: a pooled server connection (pgbouncer) that still holds the
# older `events_staging` table, whose payload column was jsonb, is no trap.
CREATE_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS events_staging_v2 ("
    + ", ".join(f"{name} {kind}" for name, kind in zip(COLUMNS, STAGING_TYPES, strict=True))
    + ") ON COMMIT DELETE ROWS"
)
COPY_STAGING = f"COPY events_staging_v2 ({COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
INSERT_EVENTS = (
    f"INSERT INTO raw.events ({COLUMN_LIST}) "
    f"SELECT {COLUMN_LIST.replace('payload', 'payload::jsonb')} FROM events_staging_v2 "
    "ON CONFLICT (project_id, message_id) DO NOTHING RETURNING project_id, message_id"
)


# What a lost connection looks like to psycopg (AdminShutdown and the like are
# OperationalErrors too). PoolTimeout is one as well but never follows a commit.
CONNECTION_LOST = (OperationalError, InterfaceError, OSError)


class WriterClosedError(RuntimeError):
    pass


class CommitOutcomeUnknownError(RuntimeError):
    """The connection was lost after the commit was sent: the rows may be stored."""


class _CommitPoint:
    sent = False


@contextlib.contextmanager
def _commit_outcome() -> Iterator[_CommitPoint]:
    """Marks where a transaction's commit is sent (`point.sent = True` just before it).

    A lost connection before the mark means nothing was committed; after it, Postgres
    may have committed and the answer never reached us.
    """
    point = _CommitPoint()
    try:
        yield point
    except CONNECTION_LOST as exc:
        if point.sent:
            raise CommitOutcomeUnknownError(
                f"connection lost while committing: {type(exc).__name__}"
            ) from exc
        raise


@dataclass
class _Pending:
    rows: Sequence[EventRow]
    done: asyncio.Future[list[bool]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class EventWriter:
    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection],
        *,
        max_rows: int = 500,
        max_wait_ms: float = 0.0,
        concurrency: int = 3,
    ) -> None:
        self._pool = pool
        self._max_rows = max_rows
        self._max_wait = max_wait_ms / 1000
        self._concurrency = concurrency
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        # Until Postgres says this role may not COPY into raw.events (row-level security).
        self._direct = True

    @property
    def direct(self) -> bool:
        """Whether batches are COPYed straight into raw.events (see the module's notes)."""
        return self._direct

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not self._closing and all(not t.done() for t in self._tasks)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"event-writer-{i}")
            for i in range(self._concurrency)
        ]

    async def write(self, rows: Sequence[EventRow]) -> list[bool]:
        """Store rows; True where a row is new, False where it was a duplicate.

        Returns only after the commit. Raises the database's error when the
        batch could not be committed (the caller answers 503).
        """
        if self._closing:
            raise WriterClosedError("the service is shutting down")
        if not rows:
            return []
        pending = _Pending(rows)
        self._queue.put_nowait(pending)
        WRITER_QUEUE_DEPTH.set(self._queue.qsize())
        return await pending.done

    async def close(self) -> None:
        """Flush everything queued, then stop (SIGTERM path: acknowledged work is never dropped)."""
        self._closing = True
        await self._queue.join()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _take_batch(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        size = len(batch[0].rows)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_wait
        while size < self._max_rows:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            batch.append(item)
            size += len(item.rows)
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._take_batch()
            try:
                await self._flush(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()
                WRITER_QUEUE_DEPTH.set(self._queue.qsize())

    async def _flush(self, batch: list[_Pending]) -> None:
        try:
            inserted = await self._insert([row for pending in batch for row in pending.rows])
        except (*CONNECTION_LOST, CommitOutcomeUnknownError) as exc:
            # The database is unreachable: nobody in this batch is acknowledged (and
            # with CommitOutcomeUnknownError each request is told its rows may be stored).
            log.warning("event batch not stored: %s", type(exc).__name__)
            self._fail(batch, exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                log.warning("event request not stored: %s", type(exc).__name__)
                self._fail(batch, exc)
                return
            # Something in one request's rows is unstorable: write the requests one
            # by one so the others are not refused for it.
            for pending in batch:
                await self._flush([pending])
            return
        WRITER_BATCH_ROWS.observe(sum(len(p.rows) for p in batch))
        # A key inserted once: its first occurrence in the batch is "new", any repeat a duplicate.
        for pending in batch:
            results = []
            for row in pending.rows:
                key = (row.project_id, row.message_id)
                results.append(key in inserted)
                inserted.discard(key)
            if not pending.done.done():
                pending.done.set_result(results)

    async def _insert(self, rows: list[EventRow]) -> set[tuple[int, str]]:
        # The pool does not test a connection on every checkout (a round trip per
        # batch); a connection that died since its last use (a Postgres restart)
        # fails here instead. Then every idle connection is tested, the dead ones
        # replaced, and the batch tried once more. That is safe because the insert
        # is idempotent: rows that a lost COMMIT did store come back as duplicates.
        # No retry after PoolTimeout: no connection came within the pool's timeout,
        # and waiting as long again would only delay the 503.
        try:
            return await self._insert_once(rows)
        except PoolTimeout:
            raise
        except (*CONNECTION_LOST, CommitOutcomeUnknownError) as exc:
            maybe_stored = isinstance(exc, CommitOutcomeUnknownError)
            log.info("event batch failed, checking connections: %s", type(exc).__name__)
        await self._pool.check()
        try:
            return await self._insert_once(rows)
        except CommitOutcomeUnknownError:
            raise
        except Exception as exc:
            if maybe_stored:
                # The retry stored nothing, but the first attempt may have.
                raise CommitOutcomeUnknownError(
                    f"connection lost while committing, then {type(exc).__name__}"
                ) from exc
            raise

    async def _insert_once(self, rows: list[EventRow]) -> set[tuple[int, str]]:
        async with self._pool.connection() as conn:
            if self._direct:
                try:
                    await self._copy_direct(conn, rows)
                except UniqueViolation:
                    count_flush("duplicate_fallback")
                except FeatureNotSupported:
                    self._direct = False
                    log.warning(
                        "the ingest role may not COPY into raw.events (row-level security); "
                        "writing through the staging table from now on: grant it BYPASSRLS "
                        "(docs/runbooks.md)"
                    )
                else:
                    count_flush("direct")
                    return {(row.project_id, row.message_id) for row in rows}
            count_flush("staged")
            return await self._copy_staged(conn, rows)

    @staticmethod
    async def _copy_direct(conn: AsyncConnection, rows: list[EventRow]) -> None:
        # Autocommit: the COPY is its own transaction; a failure rolls all of it back.
        with _commit_outcome() as commit:
            async with conn.cursor().copy(COPY_EVENTS) as copy:
                copy.set_types(DIRECT_TYPES)
                for row in rows:
                    await copy.write_row(_values(row))
                # Leaving the block sends the end of the data, which commits.
                commit.sent = True

    @staticmethod
    async def _copy_staged(conn: AsyncConnection, rows: list[EventRow]) -> set[tuple[int, str]]:
        with _commit_outcome() as commit:
            async with conn.transaction():
                await conn.execute(CREATE_STAGING)
                async with conn.cursor().copy(COPY_STAGING) as copy:
                    copy.set_types(STAGING_TYPES)
                    for row in rows:
                        await copy.write_row(_values(row))
                cur = await conn.execute(INSERT_EVENTS)
                inserted = {(pid, mid) for pid, mid in await cur.fetchall()}
                # Leaving the block sends COMMIT.
                commit.sent = True
        return inserted

    @staticmethod
    def _fail(batch: list[_Pending], exc: Exception) -> None:
        for pending in batch:
            if not pending.done.done():
                pending.done.set_exception(exc)
