"""What the event endpoints need from a request, whichever layer received it.

Litestar's `Request` satisfies `Incoming` as it is; `LeanRequest` satisfies it straight
from the ASGI scope for the event fast path (lytics_ingest_api.fast_path), so body
limits, authentication, admission and client addresses have one implementation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol, cast
from urllib.parse import parse_qsl

from litestar import Litestar
from litestar.datastructures import Address, MultiDict
from litestar.types import Receive, Scope

from lytics_ingest_api.errors import bad_request


class Incoming(Protocol):
    @property
    def app(self) -> Litestar: ...

    @property
    def scope(self) -> Scope: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def query_params(self) -> Mapping[str, Any]: ...

    @property
    def client(self) -> Address | None: ...

    def stream(self) -> AsyncIterator[bytes]: ...


class LeanRequest:
    """A request read from the ASGI scope with nothing computed until it is asked for."""

    __slots__ = ("_headers", "_query", "_receive", "app", "scope")

    def __init__(self, app: Litestar, scope: Scope, receive: Receive) -> None:
        self.app = app
        self.scope = scope
        self._receive = receive
        self._headers: dict[str, str] | None = None
        self._query: MultiDict[Any] | None = None

    @property
    def headers(self) -> Mapping[str, str]:
        if self._headers is None:
            # ASGI servers send lower-case names; like Litestar's headers, the first of
            # a repeated header wins.
            headers: dict[str, str] = {}
            for name, value in self.scope["headers"]:
                headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
            self._headers = headers
        return self._headers

    @property
    def query_params(self) -> Mapping[str, Any]:
        if self._query is None:
            # As Litestar parses them: blank values kept, percent-escapes read as UTF-8.
            raw = self.scope.get("query_string", b"").decode("latin-1")
            self._query = MultiDict(parse_qsl(raw, keep_blank_values=True, separator="&"))
        return self._query

    @property
    def client(self) -> Address | None:
        client = self.scope.get("client")
        return Address(*client) if client else None

    async def stream(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise bad_request("the client disconnected before sending the whole body")
            body = cast(bytes, message.get("body", b""))
            if body:
                yield body
            if not message.get("more_body", False):
                return
