"""One error shape for every endpoint: `{"error": code, "message": text, "field": name?}`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap
from psycopg import DataError
from psycopg import OperationalError as PsycopgOperationalError
from psycopg_pool import PoolTimeout

log = logging.getLogger(__name__)

RETRY_AFTER_UNAVAILABLE_S = 5


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

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class StoreUnavailableError(ApiError):
    """Postgres could not take the data: never a 2xx, always retryable."""

    def __init__(self, detail: str = "the database is unavailable") -> None:
        super().__init__(
            503,
            "unavailable",
            f"{detail}; nothing was stored, retry later",
            headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE_S)},
        )


def bad_request(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, "invalid", message, field=field)


def unauthorized(message: str) -> ApiError:
    return ApiError(
        401, "unauthorized", message, headers={"WWW-Authenticate": 'Basic realm="lytics"'}
    )


def _api_error(request: Request[Any, Any, Any], exc: ApiError) -> Response[dict[str, Any]]:
    return Response(exc.body(), status_code=exc.status, headers=exc.headers)


def _http_exception(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[dict[str, Any]]:
    code = {
        400: "invalid",
        401: "unauthorized",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
        429: "rate_limited",
    }.get(exc.status_code, "error")
    body: dict[str, Any] = {"error": code, "message": exc.detail}
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
        first = exc.extra[0]
        if isinstance(first, dict) and first.get("key"):
            body["field"] = first["key"]
            body["message"] = f"{first.get('message', exc.detail)} ({first['key']})"
    return Response(body, status_code=exc.status_code, headers=exc.headers)


def _store_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.warning("database unavailable: %s", type(exc).__name__)
    return _api_error(request, StoreUnavailableError())


def _unstorable(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # Input that passed validation but that Postgres refuses: the client's data, not our outage.
    log.warning("database refused input: %s", type(exc).__name__)
    body = {
        "error": "unstorable",
        "message": f"the database refused the data ({type(exc).__name__})",
    }
    return Response(body, status_code=422)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return Response({"error": "internal", "message": "internal error"}, status_code=500)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ApiError: _api_error,
    HTTPException: _http_exception,
    PoolTimeout: _store_error,
    PsycopgOperationalError: _store_error,
    DataError: _unstorable,
    Exception: _unexpected,
}
