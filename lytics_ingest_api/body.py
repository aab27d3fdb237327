"""Request bodies: decompression with a hard ceiling, JSON decoding.

A JSON endpoint reads its body as JSON whatever `Content-Type` says, as Segment's
and RudderStack's servers do: SDKs label JSON as `text/plain` (sendBeacon, to
avoid a CORS preflight), as `application/x-www-form-urlencoded` (axios in
`@rudderstack/rudder-sdk-node`), or not at all. Only a `Content-Encoding` that
cannot be undone is refused (415).

Limits apply to the *decompressed* size, checked while decompressing, so a
gzip bomb is refused after at most `limit` bytes of output, never expanded
in memory.
"""

from __future__ import annotations

import sys
import zlib
from typing import Any

import msgspec

from lytics_ingest_api.errors import ApiError, bad_request
from lytics_ingest_api.incoming import Incoming
from lytics_ingest_api.jsontext import explain

# Compressed input beyond this is refused outright (JSON compresses ~5-20x; this is generous).
COMPRESSED_SLACK = 64 * 1024


def too_large(limit: int, what: str = "request body") -> ApiError:
    return ApiError(413, "too_large", f"{what} exceeds {limit} bytes (measured decompressed)")


def media_type(request: Incoming) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _decompressor(encoding: str) -> Any:
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise ApiError(
        415, "unsupported_media_type", f"Content-Encoding {encoding!r} is not supported (use gzip)"
    )


async def _read_plain(request: Incoming, limit: int) -> bytes:
    out = bytearray()
    async for chunk in request.stream():
        out += chunk
        if len(out) > limit:
            raise too_large(limit)
    return bytes(out)


def _inflate(decompressor: Any, data: bytes, out: bytearray, limit: int, encoding: str) -> None:
    # max_length stops the output at limit+1 bytes however small the input.
    while data:
        try:
            out += decompressor.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise bad_request(f"body is not valid {encoding}: {exc}") from exc
        if len(out) > limit:
            raise too_large(limit)
        data = decompressor.unconsumed_tail


async def _read_compressed(
    request: Incoming, limit: int, decompressor: Any, encoding: str
) -> bytes:
    out = bytearray()
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit + COMPRESSED_SLACK:
            raise too_large(limit)
        _inflate(decompressor, chunk, out, limit, encoding)
    try:
        out += decompressor.flush()
    except zlib.error as exc:
        raise bad_request(f"body is not valid {encoding}: {exc}") from exc
    if not decompressor.eof:
        raise bad_request(f"body is a truncated {encoding} stream")
    if len(out) > limit:
        raise too_large(limit)
    return bytes(out)


async def read_body(request: Incoming, limit: int) -> bytes:
    encoding = request.headers.get("content-encoding", "").strip().lower()
    decompressor = _decompressor(encoding)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        ceiling = limit if decompressor is None else limit + COMPRESSED_SLACK
        if int(declared) > ceiling:
            raise too_large(limit)
    if decompressor is None:
        return await _read_plain(request, limit)
    return await _read_compressed(request, limit, decompressor, encoding)


def decode_json(body: bytes, root: str = "") -> Any:
    """The body's JSON value; a 400 naming the field for invalid UTF-8, a number out of
    range, or nesting too deep to decode (limits on what may be *stored* are the
    endpoints', jsontext.storable)."""
    if not body.strip():
        raise bad_request("request body is empty; send a JSON object")
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        problem = explain(body, sys.maxsize, root)
        if problem is not None:
            raise bad_request(problem.message, field=problem.field) from None
        if isinstance(exc, RecursionError):
            raise bad_request("the body nests too deeply to be decoded", field="body") from None
        raise bad_request(f"malformed JSON: {exc}", field="body") from None


async def read_json(request: Incoming, limit: int, root: str = "") -> Any:
    """The body's JSON value; `root` names the body itself in error fields."""
    return decode_json(await read_body(request, limit), root)
