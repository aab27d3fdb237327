"""Signed webhook intake: Resend (Standard Webhooks / Svix), GitHub, and any HMAC sender.

Verify, store durably, answer: the signature is checked on the raw bytes
before anything is parsed, the delivery is stored once per sender delivery id
(`INSERT ... ON CONFLICT DO NOTHING`), and 200 is sent only after the commit.
Processing happens later, downstream of `raw.webhook_deliveries`.

Which project: `?project=<slug>` on the webhook URL; without it, the one
project that has a secret for that source (400 naming `project` when there
is none or more than one).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

import msgspec
from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.params import PathParameter, QueryParameter
from psycopg import AsyncConnection, InterfaceError, OperationalError
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from lytics.crypto import Cipher, InvalidToken
from lytics.settings import MissingSettingError, Settings
from lytics.webhook_secrets import CIPHER_PURPOSE, SOURCE, decrypt_secrets
from lytics_ingest_api.body import media_type, read_body
from lytics_ingest_api.errors import ApiError, StoreUnavailableError, bad_request
from lytics_ingest_api.jsontext import UnstorableJsonError, storable
from lytics_ingest_api.observability import WEBHOOKS, note
from lytics_ingest_api.openapi_docs import WEBHOOK_BODY, json_body, responses
from lytics_ingest_api.response_bodies import WebhookStored
from lytics_ingest_api.webhooks.signatures import (
    Verification,
    standard_webhooks_id,
    verify_github,
    verify_hmac,
    verify_standard_webhooks,
)

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1024 * 1024
# Short, so adding or removing a secret takes effect within seconds; also bounded by
# LYTICS_KEY_CACHE_SECONDS (0 turns the cache off).
SECRET_CACHE_SECONDS = 5.0
MAX_CACHED = 10_000
STATE_KEY = "webhook_secret_cache"
MAX_DELIVERY_ID = 200
MAX_TEXT = 500
# Credentials of some other system; signature headers stay (they are not secrets and
# let anyone re-verify a stored delivery).
DROPPED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
GENERIC_ID_HEADERS = ("x-delivery-id", "x-request-id", "idempotency-key")

Scheme = Literal["standard_webhooks", "github", "hmac"]

BY_SLUG = """
SELECT p.id, p.slug, s.secrets_encrypted
FROM app.projects p
LEFT JOIN app.webhook_sources s ON s.project_id = p.id AND s.source = %s
WHERE p.slug = %s
"""

CONFIGURED = """
SELECT p.id, p.slug, s.secrets_encrypted
FROM app.webhook_sources s JOIN app.projects p ON p.id = s.project_id
WHERE s.source = %s
ORDER BY p.id
LIMIT 2
"""

INSERT_DELIVERY = """
INSERT INTO raw.webhook_deliveries
    (project_id, provider, delivery_id, event_type, sender, headers, body, payload)
VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s::jsonb)
ON CONFLICT (project_id, provider, delivery_id) DO NOTHING
RETURNING id
"""

STORE_DOWN = (OperationalError, InterfaceError, PoolTimeout, OSError)


class WebhookError(ApiError):
    """An ApiError that also names the outcome counted in `lytics_webhooks_total`."""

    def __init__(self, status: int, code: str, message: str, *, result: str, **kw: Any) -> None:
        super().__init__(status, code, message, **kw)
        self.result = result


# --- which project, which secrets -------------------------------------------------------


@dataclass(frozen=True)
class Target:
    project_id: int
    project_slug: str
    secrets: tuple[str, ...]  # empty: the project has no secret for this source


Lookup = Target | Literal["unknown_project", "no_source", "ambiguous"]


class SecretCache:
    """(source, project slug) → project and decrypted secrets, for a few seconds.

    Every delivery needs its secrets; caching them briefly keeps Postgres out of the
    hot path, and the short TTL keeps rotation (add new, remove old) prompt.
    """

    def __init__(self, settings: Settings, ttl: float | None = None) -> None:
        self._settings = settings
        self.ttl = min(settings.key_cache_seconds, SECRET_CACHE_SECONDS) if ttl is None else ttl
        self._cipher: Cipher | None = None
        self._entries: OrderedDict[tuple[str, str | None], tuple[Lookup, float]] = OrderedDict()

    def forget(self) -> None:
        self._entries.clear()

    def _decrypt(self, blob: bytes | None, slug: str, source: str) -> tuple[str, ...]:
        if blob is None:
            return ()
        try:
            if self._cipher is None:
                self._cipher = Cipher(self._settings.require_secret_key(), CIPHER_PURPOSE)
            return tuple(decrypt_secrets(self._cipher, blob))
        except (MissingSettingError, InvalidToken, ValueError) as exc:
            # The operator's problem, not the sender's: loud in the log, retryable for senders.
            log.error(
                "webhook secrets of project %s, source %s cannot be read (%s): "
                "is LYTICS_SECRET_KEY the key they were stored with?",
                slug,
                source,
                type(exc).__name__,
            )
            raise WebhookError(
                500,
                "misconfigured",
                "the signing secrets for this source cannot be read; the operator must fix it",
                result="misconfigured",
            ) from exc

    async def lookup(
        self, pool: AsyncConnectionPool[AsyncConnection], source: str, slug: str | None
    ) -> Lookup:
        now = time.monotonic()
        cached = self._entries.get((source, slug))
        if cached is not None and cached[1] > now:
            return cached[0]
        async with pool.connection() as conn:
            if slug is not None:
                cur = await conn.execute(BY_SLUG, (source, slug))
            else:
                cur = await conn.execute(CONFIGURED, (source,))
            rows = await cur.fetchall()
        result: Lookup
        if slug is not None and not rows:
            result = "unknown_project"
        elif not rows:
            result = "no_source"
        elif len(rows) > 1:
            result = "ambiguous"
        else:
            project_id, project_slug, blob = rows[0]
            result = Target(project_id, project_slug, self._decrypt(blob, project_slug, source))
        if self.ttl > 0:
            self._entries[(source, slug)] = (result, now + self.ttl)
            if len(self._entries) > MAX_CACHED:
                self._entries.popitem(last=False)
        return result


def secret_cache(state: State) -> SecretCache:
    """The app's secret cache (created on first use; tests may replace or clear it)."""
    cache: SecretCache | None = state.get(STATE_KEY)
    if cache is None:
        cache = SecretCache(state.settings)
        state[STATE_KEY] = cache
    return cache


async def _target(request: Request[Any, Any, Any], source: str, slug: str | None) -> Target:
    try:
        found = await secret_cache(request.app.state).lookup(request.app.state.pool, source, slug)
    except STORE_DOWN as exc:
        raise StoreUnavailableError() from exc
    if isinstance(found, Target):
        return found
    if found == "unknown_project":
        raise WebhookError(
            404, "not_found", f"no project {slug!r}", field="project", result="unknown_project"
        )
    if found == "ambiguous":
        raise WebhookError(
            400,
            "invalid",
            f"several projects receive {source} webhooks: add ?project=<slug> to the webhook URL",
            field="project",
            result="ambiguous_project",
        )
    raise WebhookError(
        400,
        "invalid",
        f"no project has a {source} signing secret: configure one with "
        f"`lytics webhooks add-secret PROJECT {source}`, or add ?project=<slug> to the URL",
        field="project",
        result="no_secret",
    )


# --- what was delivered ------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    event_type: str | None
    sender: str | None
    body: bytes  # exactly the bytes that were verified
    payload: Any  # the parsed body, None when it is not JSON


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if "\x00" in text:
        return None  # Postgres text cannot hold it; the stored body keeps the value
    return text[:MAX_TEXT] or None


def _dig(payload: Any, *path: str | int) -> Any:
    for step in path:
        if isinstance(step, int):
            payload = payload[step] if isinstance(payload, list) and len(payload) > step else None
        else:
            payload = payload.get(step) if isinstance(payload, dict) else None
    return payload


def _delivery_id(candidate: str | None, body: bytes) -> str:
    if not candidate:
        # Nothing from the sender: identical bytes are the same delivery.
        return "sha256:" + hashlib.sha256(body).hexdigest()
    if len(candidate) > MAX_DELIVERY_ID:
        return "sha256:" + hashlib.sha256(candidate.encode()).hexdigest()
    return candidate


def _describe(scheme: Scheme, headers: Mapping[str, str], body: bytes, payload: Any) -> Delivery:
    if scheme == "standard_webhooks":
        # Resend: {"type": "email.bounced", "data": {"from": ..., "to": [...]}}.
        recipient = _dig(payload, "data", "to")
        first = recipient[0] if isinstance(recipient, list) and recipient else recipient
        return Delivery(
            _delivery_id(standard_webhooks_id(headers), body),
            _text(_dig(payload, "type")),
            _text(first) or _text(_dig(payload, "data", "from")),
            body,
            payload,
        )
    if scheme == "github":
        return Delivery(
            _delivery_id(_text(headers.get("x-github-delivery")), body),
            _text(headers.get("x-github-event")),
            _text(_dig(payload, "sender", "login")),
            body,
            payload,
        )
    from_headers = next((headers[h] for h in GENERIC_ID_HEADERS if headers.get(h)), None)
    from_body = _text(_dig(payload, "message_id")) or _text(_dig(payload, "id"))
    return Delivery(
        _delivery_id(_text(from_headers) or from_body, body),
        _text(headers.get("x-event-type"))
        or _text(_dig(payload, "type"))
        or _text(_dig(payload, "event")),
        _text(_dig(payload, "from")) or _text(_dig(payload, "sender")),
        body,
        payload,
    )


def _payload(request: Request[Any, Any, Any], body: bytes) -> Any:
    """The parsed body when it is JSON (GitHub may also send it form-encoded), else None."""
    raw: bytes | str = body
    if media_type(request) == "application/x-www-form-urlencoded":
        try:
            raw = parse_qs(body.decode()).get("payload", [""])[0]
        except UnicodeDecodeError:
            return None
    try:
        return msgspec.json.decode(raw) if raw else None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        # Not JSON, not UTF-8, a number out of range, too deep to decode: the verified
        # bytes are stored all the same; only the parsed copy is missing.
        return None


def _jsonb(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return storable(value).decode()
    except UnstorableJsonError:
        # jsonb cannot hold U+0000, and a parsed copy need not nest without bound; the
        # exact bytes are kept in `body` anyway.
        return None


def _stored_headers(request: Request[Any, Any, Any]) -> dict[str, str]:
    kept: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if name in DROPPED_HEADERS:
            continue
        value = raw_value.decode("latin-1")
        kept[name] = f"{kept[name]}, {value}" if name in kept else value
    return kept


async def _store(
    request: Request[Any, Any, Any], target: Target, provider: str, delivery: Delivery
) -> bool:
    params = (
        target.project_id,
        provider,
        delivery.delivery_id,
        delivery.event_type,
        delivery.sender,
        msgspec.json.encode(_stored_headers(request)).decode(),
        delivery.body,
        _jsonb(delivery.payload),
    )
    try:
        async with request.app.state.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(INSERT_DELIVERY, params)
            # Returned after the transaction block commits: a 200 means the row is durable.
            return await cur.fetchone() is not None
    except STORE_DOWN as exc:
        raise StoreUnavailableError() from exc


# --- the endpoints --------------------------------------------------------------------------

VERIFIERS: dict[Scheme, Callable[[Mapping[str, str], bytes, Sequence[str]], Verification]] = {
    "standard_webhooks": verify_standard_webhooks,
    "github": verify_github,
    "hmac": verify_hmac,
}


def _result(exc: ApiError) -> str:
    return exc.result if isinstance(exc, WebhookError) else exc.code


async def receive(
    request: Request[Any, Any, Any], provider: str, scheme: Scheme, project: str | None
) -> Response[dict[str, Any]]:
    # A generic source nobody configured is counted as "other": arbitrary path names
    # must not create metric series.
    label = "other" if scheme == "hmac" else provider
    try:
        target = await _target(request, provider, project)
        label = provider
        note(request.scope, project_id=target.project_id, provider=provider)
        body = await read_body(request, MAX_WEBHOOK_BYTES)
        verification = VERIFIERS[scheme](request.headers, body, target.secrets)
        if not verification.ok:
            raise WebhookError(
                401, "unauthorized", verification.message, result=verification.reason
            )
        delivery = _describe(scheme, request.headers, body, _payload(request, body))
        created = await _store(request, target, provider, delivery)
    except ApiError as exc:
        result = _result(exc)
        WEBHOOKS.labels(label, result).inc()
        note(request.scope, webhook=result)
        raise
    result = "created" if created else "duplicate"
    WEBHOOKS.labels(provider, result).inc()
    note(request.scope, webhook=result, secret_index=verification.secret_index)
    return Response({"status": result, "id": delivery.delivery_id}, status_code=200)


# Signed bodies, no key: 401 is a signature that does not verify.
WEBHOOK_ANSWERS = responses(WebhookStored, 400, 401, 404, 413, 415, 422, 503)

ProjectParam = Annotated[
    str | None,
    QueryParameter(
        max_length=63,
        description="Project slug. Optional when exactly one project has a secret for the source.",
    ),
]

_COMMON = """

The body is verified on its exact bytes (gzip `Content-Encoding` is undone first) and
stored with its headers in `raw.webhook_deliveries`; limit 1 MiB. Answers:
200 `{"status": "created"|"duplicate", "id": <delivery id>}` once committed (a repeated
delivery id stores nothing new); 401 for a missing, malformed or wrong signature, a stale
timestamp, or no secret configured; 400/404 for an ambiguous or unknown project;
413 for an oversized body; 503 with `Retry-After` when the database is unavailable.
Secrets: `lytics webhooks add-secret PROJECT SOURCE` (several may be active for rotation)."""

RESEND_DOC = (
    "Standard Webhooks (Svix), as Resend signs: headers `svix-id`, `svix-timestamp`, "
    "`svix-signature` (or `webhook-id`, `webhook-timestamp`, `webhook-signature`). "
    "The signature is HMAC-SHA256, keyed with the base64 part of the `whsec_` secret, "
    'over `"{id}.{timestamp}." + body`; the header holds space-separated `v1,<base64>` '
    "entries. The timestamp must be within 5 minutes of now. `svix-id` is the delivery id."
    + _COMMON
)

GITHUB_DOC = (
    "GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` with the "
    "webhook's secret. `X-GitHub-Delivery` is the delivery id, `X-GitHub-Event` the "
    "event type. JSON and form-encoded (`payload=`) deliveries are accepted." + _COMMON
)

GENERIC_DOC = (
    "Any sender with a shared secret: `X-Signature: <hex HMAC-SHA256 of the body>`, "
    "optionally prefixed `sha256=`. Delivery id: `X-Delivery-Id`, `X-Request-Id` or "
    "`Idempotency-Key`, else the body's `message_id`/`id`, else the SHA-256 of the body. "
    "Event type: `X-Event-Type` or the body's `type`/`event`." + _COMMON
)


@post(
    "/v1/webhooks/resend",
    operation_id="webhook_resend",
    summary="Resend webhooks (Standard Webhooks / Svix signatures)",
    description=RESEND_DOC,
    tags=["webhooks"],
    operation_class=json_body(WEBHOOK_BODY),
    status_code=200,
    responses=WEBHOOK_ANSWERS,
)
async def resend_webhook(
    request: Request[Any, Any, Any], project: ProjectParam = None
) -> Response[dict[str, Any]]:
    return await receive(request, "resend", "standard_webhooks", project)


@post(
    "/v1/webhooks/github",
    operation_id="webhook_github",
    summary="GitHub webhooks (X-Hub-Signature-256)",
    description=GITHUB_DOC,
    tags=["webhooks"],
    operation_class=json_body(WEBHOOK_BODY),
    status_code=200,
    responses=WEBHOOK_ANSWERS,
)
async def github_webhook(
    request: Request[Any, Any, Any], project: ProjectParam = None
) -> Response[dict[str, Any]]:
    return await receive(request, "github", "github", project)


@post(
    "/v1/webhooks/{source:str}",
    operation_id="webhook_generic",
    summary="Any HMAC-signed webhook (X-Signature)",
    description=GENERIC_DOC,
    tags=["webhooks"],
    operation_class=json_body(WEBHOOK_BODY),
    status_code=200,
    responses=WEBHOOK_ANSWERS,
)
async def generic_webhook(
    request: Request[Any, Any, Any],
    source: Annotated[
        str, PathParameter(description="The sender's name, as configured with the CLI")
    ],
    project: ProjectParam = None,
) -> Response[dict[str, Any]]:
    if not SOURCE.match(source):
        WEBHOOKS.labels("other", "unknown_source").inc()
        raise bad_request(
            "a webhook source is 1-63 lowercase letters, digits, '-' and '_'", field="source"
        )
    return await receive(request, source, "hmac", project)


ROUTES = [resend_webhook, github_webhook, generic_webhook]
