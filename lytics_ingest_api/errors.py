"""One error shape for every endpoint: `{"error": code, "message": text, "field": name?}`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap
from psycopg import DataError
from psycopg import OperationalError as PsycopgOperationalError
from psycopg_pool import PoolTimeout
from sqlalchemy.exc import DBAPIError as SQLAlchemyDBAPIError

log = logging.getLogger(__name__)

RETRY_AFTER_UNAVAILABLE_S = 5


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """Every error answer's body: what the handlers send and what the OpenAPI document shows."""

    error: str  # a stable machine-readable code, e.g. "invalid", "unauthorized"
    message: str  # for people: what was wrong and how to fix it
    field: str | None = None  # the part of the request at fault, when there is one


class ApiError(Exception):
    """An answer for the client, with a stable machine-readable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def body(self) -> ErrorBody:
        return ErrorBody(self.code, self.message, self.field)


class StoreUnavailableError(ApiError):
    """Postgres could not take the data: never a 2xx, always retryable.

    `maybe_stored`: the connection was lost after the commit was sent, so the data
    may be stored; a retry is still safe where the store deduplicates it.
    """

    def __init__(
        self, detail: str = "the database is unavailable", *, maybe_stored: bool = False
    ) -> None:
        outcome = (
            "it may have been stored; retrying is safe"
            if maybe_stored
            else "nothing was stored, retry later"
        )
        super().__init__(
            503,
            "unavailable",
            f"{detail}; {outcome}",
            headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
        )


def bad_request(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, "invalid", message, field=field)


def unauthorized(message: str) -> ApiError:
    return ApiError(
        401, "unauthorized", message, headers={"WWW-Authenticate": 'Basic realm="lytics"'}
    )


def problem(exc: Exception, method: str, path: str) -> tuple[int, ErrorBody, dict[str, str]]:
    """Status, body and headers answering `exc`: Litestar's handlers and the event fast
    path (lytics_ingest_api.fast_path) both answer through this."""
    if isinstance(exc, ApiError):
        return exc.status, exc.body(), exc.headers
    if isinstance(exc, HTTPException):
        return _http_problem(exc)
    if isinstance(exc, SQLAlchemyDBAPIError) and isinstance(exc.orig, PsycopgOperationalError):
        exc = exc.orig  # the same failure through a SQLAlchemy engine (the digest routes)
    if isinstance(exc, PoolTimeout | PsycopgOperationalError):
        log.warning("database unavailable: %s", type(exc).__name__)
        unavailable = StoreUnavailableError()
        return unavailable.status, unavailable.body(), unavailable.headers
    undecodable = _undecodable(exc)
    if undecodable is not None:
        return 400, undecodable, {}
    if isinstance(exc, DataError):
        # Input that passed validation but that Postgres refuses: the client's data, not our outage.
        log.warning("database refused input: %s", type(exc).__name__)
        body = ErrorBody("unstorable", f"the database refused the data ({type(exc).__name__})")
        return 422, body, {}
    log.exception("unhandled error on %s %s", method, path)
    return 500, ErrorBody("internal", "internal error"), {}


def _undecodable(exc: Exception) -> ErrorBody | None:
    """A body Litestar decodes for a handler (msgspec) that the decoder cannot read.

    The client's bytes, refused as the write endpoints refuse them: not UTF-8, or
    nested deeper than the decoder recurses.
    """
    if isinstance(exc, UnicodeDecodeError):
        return ErrorBody("invalid", "the body is not valid UTF-8", "body")
    if isinstance(exc, RecursionError):
        return ErrorBody("invalid", "the body nests too deeply to be decoded", "body")
    return None


def _http_problem(exc: HTTPException) -> tuple[int, ErrorBody, dict[str, str]]:
    code = {
        400: "invalid",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
        429: "rate_limited",
        503: "unavailable",
    }.get(exc.status_code, "error")
    body = ErrorBody(code, exc.detail)
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
        first = exc.extra[0]
        if isinstance(first, dict) and first.get("key"):
            key = str(first["key"])
            body = ErrorBody(code, f"{first.get('message', exc.detail)} ({key})", key)
    return exc.status_code, body, dict(exc.headers or {})


def _answer(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    status, body, headers = problem(exc, request.method, request.url.path)
    return Response(body, status_code=status, headers=headers)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ApiError: _answer,
    HTTPException: _answer,
    PoolTimeout: _answer,
    PsycopgOperationalError: _answer,
    DataError: _answer,
    Exception: _answer,
}
