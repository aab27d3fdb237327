"""Secret-key routes: authenticate, admit and scope to the project, once, for all of them.

A Litestar guard checks the bearer key and the key's rate before any handler runs;
dependency injection then hands the handler the `principal` and a `reader` that sees
the key's project only (row-level security on the `lytics_reader` pool).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from litestar import Request, Router
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers import BaseRouteHandler
from litestar.types import ControllerRouterHandler
from psycopg import AsyncCursor
from psycopg.rows import DictRow, dict_row

from lytics_ingest_api.admission import admit, keep_rate_limit_headers
from lytics_ingest_api.auth import Principal, require_secret_key
from lytics_ingest_api.database import ReaderPool, project_transaction
from lytics_ingest_api.errors import bad_request
from lytics_ingest_api.openapi_docs import SECRET_KEY

PRINCIPAL = "principal"


class ProjectReader:
    """Reads as `lytics_reader`, scoped to one project for each transaction."""

    def __init__(self, pool: ReaderPool, project_id: int) -> None:
        self._pool = pool
        self.project_id = project_id

    @asynccontextmanager
    async def cursor(self) -> AsyncIterator[AsyncCursor[DictRow]]:
        """One transaction, rows as dicts: for answers built from several queries."""
        async with project_transaction(self._pool, self.project_id) as conn:
            yield conn.cursor(row_factory=dict_row)

    async def rows(self, query: str, params: Any = None) -> list[DictRow]:
        async with self.cursor() as cur:
            await cur.execute(query, params)
            return await cur.fetchall()


# What a handler behind `secret_key_routes` declares to receive (injected by name).
KeyPrincipal = NamedDependency[Principal]
Reader = NamedDependency[ProjectReader]


async def secret_key_guard(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    principal = await require_secret_key(connection)
    keep_rate_limit_headers(connection.scope, await admit(connection, principal))
    _refuse_nul(connection)
    connection.scope["state"][PRINCIPAL] = principal


def _refuse_nul(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Postgres text cannot hold U+0000: a parameter holding one is the caller's error,
    answered before any query would be refused with it."""
    for name, value in connection.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise bad_request("query parameters must not contain NUL characters", field=name)


def _principal(request: Request[Any, Any, Any]) -> Principal:
    principal: Principal = request.scope["state"][PRINCIPAL]
    return principal


def _reader(request: Request[Any, Any, Any], principal: KeyPrincipal) -> ProjectReader:
    return ProjectReader(request.app.state.reader_pool, principal.project_id)


def secret_key_routes(route_handlers: Sequence[ControllerRouterHandler]) -> Router:
    """The handlers, behind the secret-key guard, with `principal` and `reader` to inject."""
    return Router(
        path="/",
        route_handlers=route_handlers,
        guards=[secret_key_guard],
        dependencies={
            "principal": Provide(_principal, sync_to_thread=False),
            "reader": Provide(_reader, sync_to_thread=False),
        },
        security=SECRET_KEY,
    )
