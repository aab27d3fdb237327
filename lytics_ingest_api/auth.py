"""Who is calling: write keys (SDKs), secret keys (servers, reads), and the key cache.

Keys are looked up by their SHA-256, never compared as strings. Verified keys
(and unknown ones, briefly) are cached so a flood of requests costs one
lookup per key per `key_cache_seconds`; a revoked key stops working within
that time.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from litestar import Litestar
from litestar.types import Scope
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from lytics.api_keys import hash_key
from lytics_ingest_api.errors import ApiError, unauthorized

KeyKind = Literal["write", "secret"]
NEGATIVE_CACHE_S = 2.0
MAX_CACHED = 50_000

# As the ingest role, through the narrow SECURITY DEFINER function of migration 0009:
# one key hash in, the active key's id and project out. The ingest role cannot read
# the key table itself, and the tenant-scoped reader plays no part in authentication.
LOOKUP = "SELECT key_id, project_id, project_slug, settings FROM app.verify_api_key(%s, %s)"


class Caller(Protocol):
    """What authentication and admission read: Litestar's requests and connections (guards)
    and the event fast path's `LeanRequest` all provide it."""

    @property
    def app(self) -> Litestar: ...

    @property
    def scope(self) -> Scope: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def query_params(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Principal:
    key_id: int
    project_id: int
    project_slug: str
    kind: KeyKind
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def allowed_origins(self) -> list[str]:
        origins = self.settings.get("allowed_origins") or []
        return [str(o).rstrip("/") for o in origins]


class KeyResolver:
    def __init__(self, pool: AsyncConnectionPool[AsyncConnection], ttl: float) -> None:
        self._pool = pool
        self._ttl = ttl
        self._cache: OrderedDict[tuple[bytes, str], tuple[Principal | None, float]] = OrderedDict()

    def forget(self) -> None:
        self._cache.clear()

    async def resolve(self, plaintext: str, kind: KeyKind) -> Principal | None:
        digest = hash_key(plaintext)
        now = time.monotonic()
        cached = self._cache.get((digest, kind))
        if cached is not None and cached[1] > now:
            return cached[0]
        async with self._pool.connection() as conn:
            cur = await conn.execute(LOOKUP, (digest, kind))
            row = await cur.fetchone()
        principal = Principal(row[0], row[1], row[2], kind, row[3] or {}) if row else None
        expires = now + (self._ttl if principal else min(self._ttl, NEGATIVE_CACHE_S))
        self._cache[(digest, kind)] = (principal, expires)
        if len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)
        return principal


def basic_username(request: Caller) -> str | None:
    """Segment-style: the write key is the Basic-auth username, the password is empty."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def bearer_token(request: Caller) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def write_key_candidates(request: Caller, body: Any = None) -> str | None:
    """Basic auth, `X-API-Key`, `writeKey` in the body, or `?writeKey=` (beacons and pixels
    cannot set headers)."""
    key = basic_username(request) or request.headers.get("x-api-key")
    if not key and isinstance(body, dict):
        candidate = body.get("writeKey") or body.get("write_key")
        key = candidate if isinstance(candidate, str) else None
    return key or request.query_params.get("writeKey") or None


async def require_write_key(request: Caller, body: Any = None) -> Principal:
    key = write_key_candidates(request, body)
    if not key:
        raise unauthorized(
            "missing write key: send it as the Basic-auth username, X-API-Key or writeKey"
        )
    resolver: KeyResolver = request.app.state.key_resolver
    principal = await resolver.resolve(key, "write")
    if principal is None:
        raise unauthorized("unknown or revoked write key")
    return principal


async def require_secret_key(request: Caller) -> Principal:
    token = bearer_token(request)
    if not token:
        raise ApiError(
            401,
            "unauthorized",
            "missing secret key: send `Authorization: Bearer <secret key>`",
            headers={"WWW-Authenticate": 'Bearer realm="lytics"'},
        )
    resolver: KeyResolver = request.app.state.key_resolver
    principal = await resolver.resolve(token, "secret")
    if principal is None:
        raise ApiError(
            401,
            "unauthorized",
            "unknown or revoked secret key",
            headers={"WWW-Authenticate": 'Bearer realm="lytics"'},
        )
    return principal
