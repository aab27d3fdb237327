"""The ingest service's connection pools (psycopg 3, async, least-privilege roles)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import QueryCanceled
from psycopg_pool import AsyncConnectionPool

from lytics.settings import Settings
from lytics.warehouse import logins
from lytics.warehouse.logins import ROLE_CHECK, RoleLogin
from lytics_ingest_api.errors import RETRY_AFTER_UNAVAILABLE_S, ApiError
from lytics_ingest_api.events import jsonb_copy

INGEST_ROLE = logins.INGEST
READER_ROLE = logins.READER
# Fail a request fast when Postgres is gone (the answer is 503 + Retry-After)
# rather than holding the client for long.
ACQUIRE_TIMEOUT_S = 3.0


async def _retry_at_once(pool: AsyncConnectionPool[AsyncConnection]) -> None:
    """psycopg_pool's `reconnect_failed`: a connection attempt gave up, start the next now.

    The pool's own back-off doubles its delay (1, 2, 4, 8 s...) for as long as
    `reconnect_timeout` allows; unbounded, a long outage leaves writes down for as
    long again after Postgres returns. With a short `reconnect_timeout` each attempt
    gives up early and `check()` starts a fresh one (it grows a pool that lost its
    connections), so the pool tries about once per `reconnect_timeout` while Postgres
    is down and reconnects that soon after it is back.
    """
    if not pool.closed:
        await pool.check()


class _CheckOnCheckout:
    """psycopg_pool's `check`: a dead connection is never handed to a request.

    When a connection fails its check, every idle one is tested at once
    (`pool.check()`), because a restart of Postgres or of a pooler cuts them all.
    Left to itself, the pool tries the next idle connection after 0, 1, 2 s...;
    with more than three dead ones a request ran out of its acquire timeout
    before reaching a live one, a 503 while the database was already back.
    """

    def __init__(self) -> None:
        self.pool: AsyncConnectionPool[AsyncConnection] | None = None

    async def __call__(self, conn: AsyncConnection) -> None:
        try:
            await AsyncConnectionPool.check_connection(conn)
        except Exception:
            if self.pool is not None and not self.pool.closed:
                await self.pool.check()
            raise


def _pool(
    login: RoleLogin,
    max_size: int,
    name: str,
    settings: Settings,
    *,
    check_on_checkout: bool = True,
    autocommit: bool = False,
    configure: Callable[[AsyncConnection], Awaitable[None]] | None = None,
    factory: Callable[..., AsyncConnectionPool[AsyncConnection]] = AsyncConnectionPool,
) -> AsyncConnectionPool[AsyncConnection]:
    kwargs: dict[str, object] = {
        "prepare_threshold": None,
        "connect_timeout": 3,
        **login.connect_kwargs(),
    }
    if autocommit:
        kwargs["autocommit"] = True
    check = _CheckOnCheckout() if check_on_checkout else None
    pool = factory(
        login.dsn,
        kwargs=kwargs,
        min_size=1,
        max_size=max_size,
        open=False,
        timeout=ACQUIRE_TIMEOUT_S,
        # A connection that died with a Postgres restart is replaced on checkout,
        # not handed to a request. The event writer opts out: it retries a batch
        # on a fresh connection instead of paying a round trip on every batch.
        check=check,
        configure=_configure(login, configure),
        name=name,
        reconnect_timeout=settings.database_reconnect_timeout_s,
        reconnect_failed=_retry_at_once,
    )
    if check is not None:
        check.pool = pool
    return pool


def _configure(
    login: RoleLogin, then: Callable[[AsyncConnection], Awaitable[None]] | None
) -> Callable[[AsyncConnection], Awaitable[None]] | None:
    """A new connection through a role's own login first proves it acts as that role."""
    if login.assumes_role:
        return then

    async def configure(conn: AsyncConnection) -> None:
        cur = await conn.execute(ROLE_CHECK, (login.role,))
        row = await cur.fetchone()
        if not conn.autocommit:
            await conn.rollback()
        assert row is not None
        login.verify(row)
        if then is not None:
            await then(conn)

    return configure


def ingest_pool(settings: Settings, *, max_size: int = 10) -> AsyncConnectionPool[AsyncConnection]:
    """Connections that can only insert raw data and verify keys (auth, webhooks, metrics).

    Checked on checkout: after Postgres or a pooler restarts, an idle connection it cut
    would otherwise fail the next key lookup or webhook with a 503 while the database
    is up again. These requests are few (keys are cached), so the round trip is cheap.
    """
    return _pool(settings.login(INGEST_ROLE), max_size, "ingest", settings)


def writer_pool(settings: Settings) -> AsyncConnectionPool[AsyncConnection]:
    """The event writer's own connections, one per committer, as the ingest role.

    Autocommit: a batch that is one COPY is then one statement and its own
    transaction, committed before COPY's completion reaches us; the staging path
    opens an explicit transaction. Kept apart from `ingest_pool` so key lookups
    never wait behind a flush, and so the jsonb COPY dumper exists only here.
    """
    return _pool(
        settings.login(INGEST_ROLE),
        settings.writer_concurrency,
        "event-writer",
        settings,
        check_on_checkout=False,
        autocommit=True,
        configure=jsonb_copy.register,
    )


class ReaderPool(AsyncConnectionPool[AsyncConnection]):
    """The read API's connections, and how long one of its statements may run."""

    def __init__(self, *args: Any, statement_timeout_ms: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statement_timeout_ms = statement_timeout_ms


def reader_pool(settings: Settings, *, max_size: int = 4) -> ReaderPool:
    """Connections for the read API: one project's rows per transaction (row-level security)."""
    timeout = settings.reader_statement_timeout_ms
    pool = _pool(
        settings.login(READER_ROLE),
        max_size,
        "reader",
        settings,
        factory=partial(ReaderPool, statement_timeout_ms=timeout),
    )
    assert isinstance(pool, ReaderPool)
    return pool


@asynccontextmanager
async def project_transaction(pool: ReaderPool, project_id: int) -> AsyncIterator[AsyncConnection]:
    """A reader transaction that sees one project's rows and nothing else.

    Row-level security keys every policy on `lytics.project_id`; `SET LOCAL`
    semantics (is_local = true) end it with the transaction, so a pooled
    connection never carries one project's scope into another's request. The
    statement timeout is set the same way (a pooler in transaction mode keeps it
    to this transaction); a read that outlives it is cancelled and answered 503.
    """
    try:
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT set_config('lytics.project_id', %s, true),"
                " set_config('statement_timeout', %s, true)",
                (str(project_id), str(pool.statement_timeout_ms)),
            )
            yield conn
    except QueryCanceled as exc:
        raise ApiError(
            503,
            "timeout",
            f"the read took longer than {pool.statement_timeout_ms} ms and was cancelled "
            "so that it cannot slow down ingest; retry later or ask for less",
            headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
        ) from exc
