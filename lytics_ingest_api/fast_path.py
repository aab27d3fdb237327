"""The ASGI entry point: the event endpoints served directly, everything else by Litestar.

Ingest volume is almost all single events and batches, and each request through
Litestar's routing, dependency and response layers cost about four times what the
endpoint itself does (docs/benchmarks.md). The endpoints in `routes.events.ENDPOINTS`
are therefore called here with a `LeanRequest`; they are the same functions Litestar's
route handlers call, and their answers pass through the same observability middleware,
error mapping (`errors.problem`) and CORS headers. Anything else - other paths and
methods, CORS preflights, lifespan - goes to the Litestar app, which also still has
handlers for these endpoints (the OpenAPI document, and a fallback).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Litestar
from litestar.types import Receive, Scope, Send

from lytics_ingest_api import cors
from lytics_ingest_api.answers import Answer, json_answer, raw_headers
from lytics_ingest_api.errors import problem
from lytics_ingest_api.incoming import LeanRequest
from lytics_ingest_api.observability import observability_middleware
from lytics_ingest_api.routes.events import Endpoint


class IngestApp:
    """ASGI app: `endpoints` answered here, the rest by `litestar`."""

    def __init__(self, litestar: Litestar, endpoints: Mapping[tuple[str, str], Endpoint]) -> None:
        self.litestar = litestar
        self._endpoints = dict(endpoints)
        self._observed = observability_middleware(self._serve)
        # Around the whole of Litestar, not as its middleware: Litestar runs middleware
        # only for matched routes, and 404/405 answers need the same headers and log line.
        self._observed_litestar = observability_middleware(litestar)

    @property
    def state(self) -> Any:
        return self.litestar.state

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) in self._endpoints:
            scope["app"] = scope["litestar_app"] = self.litestar
            scope.setdefault("state", {})
            # The metrics label, as Litestar's router would set it (these paths have no parameters).
            scope["path_template"] = scope["path"]
            await self._observed(scope, receive, send)
            return
        if scope["type"] == "http":
            await self._observed_litestar(scope, receive, send)
            return
        await self.litestar(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._endpoints[scope["method"], scope["path"]]  # type: ignore[typeddict-item]
        request = LeanRequest(self.litestar, scope, receive)
        try:
            answer = await endpoint(request)
        except Exception as exc:  # every failure gets the API's error shape, as in Litestar
            status, body, headers = problem(exc, scope["method"], scope["path"])  # type: ignore[typeddict-item]
            answer = json_answer(status, body, headers)
        await _send(answer, request, send)


async def _send(answer: Answer, request: LeanRequest, send: Send) -> None:
    headers = [
        (b"content-type", answer.media_type.encode("latin-1")),
        (b"content-length", str(len(answer.body)).encode("latin-1")),
        *raw_headers(answer.headers),
    ]
    origin = request.headers.get("origin")
    if origin:
        headers.extend(cors.answer_headers(origin, "cookie" in request.headers))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})
