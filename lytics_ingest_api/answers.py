"""An endpoint's answer as bytes, so Litestar and the event fast path send the same thing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Response

JSON = "application/json"
encode_json = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    media_type: str = JSON

    def response(self) -> Response[Any]:
        """The answer for a Litestar route handler."""
        return Response(
            self.body,
            status_code=self.status,
            headers=dict(self.headers),
            media_type=self.media_type,
        )


def json_answer(status: int, content: Any, headers: Mapping[str, str] | None = None) -> Answer:
    return Answer(status, encode_json(content), headers or {})


def raw_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """Headers as ASGI sends them (lower-case names, as Litestar's own answers have)."""
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]
