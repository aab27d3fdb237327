"""Event intake: Segment's HTTP Tracking API, the native endpoint, and `/collect` beacons."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from psycopg import Error as PsycopgError
from psycopg import InterfaceError, OperationalError
from psycopg_pool import PoolTimeout

from lytics.settings import Settings
from lytics_ingest_api.admission import admit
from lytics_ingest_api.answers import Answer, json_answer
from lytics_ingest_api.auth import Principal, require_write_key
from lytics_ingest_api.body import decode_json, read_body, read_json, too_large
from lytics_ingest_api.client_ip import Network, client_ip
from lytics_ingest_api.errors import ApiError, ErrorBody, StoreUnavailableError, bad_request
from lytics_ingest_api.events.normalize import (
    EventError,
    EventRow,
    RequestContext,
    collect_event,
    decode_event_json,
    segment_event,
    segment_event_json,
    unstorable_event,
)
from lytics_ingest_api.events.segment_shape import (
    MAX_BATCH_EVENTS,
    CollectEvent,
    SegmentBatch,
    SegmentEvent,
    decode_batch,
    invalid_part,
)
from lytics_ingest_api.events.timestamps import TimestampError, parse_time
from lytics_ingest_api.events.writer import (
    CommitOutcomeUnknownError,
    EventWriter,
    WriterClosedError,
)
from lytics_ingest_api.incoming import Incoming
from lytics_ingest_api.observability import count_events, count_project_events, note
from lytics_ingest_api.openapi_docs import (
    WRITE_ERRORS,
    WRITE_KEY,
    json_body,
    responses,
    struct_body,
)
from lytics_ingest_api.response_bodies import BatchAnswer, CollectAnswer, EventAnswer
from lytics_ingest_api.suppressions import suppressed

# A transparent 1x1 GIF for pixels.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
SEGMENT_KINDS = ("track", "identify", "page", "screen", "group", "alias")


class Outcome(msgspec.Struct, omit_defaults=True):
    """One event's fate, encoded as it appears in a batch answer's `results`."""

    index: int
    status: str  # accepted, duplicate, rejected
    messageId: str | None = None
    error: str | None = None  # a rejection's code
    message: str | None = None
    field: str | None = None


def _context(request: Incoming, principal: Principal, source: str) -> RequestContext:
    settings: Settings = request.app.state.settings
    trusted: Sequence[Network] = request.app.state.trusted_proxies
    return RequestContext(
        project_id=principal.project_id,
        received_at=datetime.now(UTC),
        source=source,
        max_event_bytes=settings.max_event_bytes,
        max_future=timedelta(hours=settings.max_future_hours),
        ip=client_ip(request, trusted),
        user_agent=request.headers.get("user-agent"),
    )


async def _store(state: State, rows: list[EventRow]) -> list[bool]:
    writer: EventWriter = state.writer
    try:
        return await writer.write(rows)
    except WriterClosedError as exc:
        raise StoreUnavailableError("the service is shutting down") from exc
    except CommitOutcomeUnknownError as exc:
        raise StoreUnavailableError(
            "the connection to the database was lost while the events were committed",
            maybe_stored=True,
        ) from exc
    except (OperationalError, InterfaceError, PoolTimeout, OSError) as exc:
        raise StoreUnavailableError() from exc
    except PsycopgError as exc:
        # The database refused these rows (not the connection): no retry will help.
        raise ApiError(
            422, "unstorable", f"the database refused the events: {type(exc).__name__}"
        ) from exc


async def _store_rows(state: State, rows: list[EventRow]) -> Sequence[bool | EventError]:
    """Whether each row is new; an `EventError` for a row Postgres refused.

    Rows are written together. When Postgres refuses them for their content (a number
    it cannot hold, found only there because the batch path does not decode what it
    does not read), each row is written on its own, so only the bad ones are rejected.
    """
    try:
        return await _store(state, rows)
    except ApiError as exc:
        if exc.code != "unstorable":
            raise
    return await asyncio.gather(*(_store_alone(state, row) for row in rows))


async def _store_alone(state: State, row: EventRow) -> bool | EventError:
    try:
        return (await _store(state, [row]))[0]
    except ApiError as exc:
        if exc.code != "unstorable":
            raise
        return unstorable_event(row.payload)


async def ingest(
    request: Incoming,
    events: Sequence[Any],
    ctx: RequestContext,
    normalize: Callable[[Any, RequestContext], EventRow],
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    rows: list[EventRow] = []
    positions: list[int] = []
    hashes = await request.app.state.suppressions.of(ctx.project_id)
    for index, event in enumerate(events):
        try:
            row = normalize(event, ctx)
        except EventError as exc:
            outcomes.append(Outcome(index, "rejected", None, exc.code, exc.message, exc.field))
            count_events("rejected", exc.code)
            continue
        if hashes and suppressed(row, hashes):
            # A deleted person's event: answered as any other, stored nowhere.
            outcomes.append(Outcome(index, "accepted", row.message_id))
            count_events("suppressed", "")
            continue
        positions.append(len(outcomes))
        outcomes.append(Outcome(index, "accepted", row.message_id))
        rows.append(row)
    for position, stored in zip(positions, await _store_rows(request.app.state, rows), strict=True):
        if isinstance(stored, EventError):
            outcomes[position] = Outcome(
                outcomes[position].index,
                "rejected",
                None,
                stored.code,
                stored.message,
                stored.field,
            )
            count_events("rejected", stored.code)
        elif not stored:
            outcomes[position].status = "duplicate"
    accepted = sum(o.status == "accepted" for o in outcomes)
    duplicates = sum(o.status == "duplicate" for o in outcomes)
    if rows:
        count_project_events(ctx.project_id, len(rows))
    if accepted:
        count_events("accepted", "", accepted)
    if duplicates:
        count_events("duplicate", "", duplicates)
    note(request.scope, events=len(outcomes), accepted=accepted, duplicates=duplicates)
    return outcomes


def _single_answer(outcome: Outcome, headers: dict[str, str]) -> Answer:
    if outcome.status == "rejected":
        status = 413 if outcome.error == "too_large" else 400
        problem = {"error": outcome.error, "message": outcome.message, "field": outcome.field}
        return json_answer(status, problem, headers)
    body: dict[str, Any] = {
        "success": True,
        "messageId": outcome.messageId,
        "status": outcome.status,
    }
    return json_answer(200, body, headers)


def _many_answer(outcomes: list[Outcome], headers: dict[str, str]) -> Answer:
    counts = {
        s: sum(o.status == s for o in outcomes) for s in ("accepted", "duplicate", "rejected")
    }
    body = {
        "success": counts["rejected"] == 0,
        "received": len(outcomes),
        **counts,
        "results": outcomes,
    }
    # Nothing usable at all is a client error; a partly bad batch is answered
    # per event (the good ones are stored, the bad ones will never be).
    status = 400 if outcomes and counts["rejected"] == len(outcomes) else 200
    return json_answer(status, body, headers)


# The endpoints themselves, whichever layer received the request: each Litestar handler
# below answers with one of them, and lytics_ingest_api.fast_path calls them directly.
Endpoint = Callable[[Incoming], Awaitable[Answer]]


def _segment_call(kind: str) -> Endpoint:
    async def segment_call(request: Incoming) -> Answer:
        settings: Settings = request.app.state.settings
        event = await read_json(request, settings.max_event_bytes)
        principal = await require_write_key(request, event)
        headers = await admit(request, principal)
        ctx = _context(request, principal, "segment")
        outcomes = await ingest(request, [event], ctx, lambda e, c: segment_event(e, c, kind))
        return _single_answer(outcomes[0], headers)

    return segment_call


def _with_batch_context(event: Any, shared: dict[str, Any]) -> Any:
    """Segment's batch-level `context` and `integrations` apply to every event."""
    if not isinstance(event, dict):
        return event
    merged = dict(event)
    for name, value in shared.items():
        own = merged.get(name)
        merged[name] = {**value, **own} if isinstance(own, dict) else own if own else value
    return merged


async def segment_batch(request: Incoming) -> Answer:
    settings: Settings = request.app.state.settings
    data = await read_body(request, settings.max_batch_bytes)
    try:
        envelope = decode_batch(data)
    except msgspec.ValidationError as exc:
        field, message = invalid_part(exc, "body")
        if field == "body" or message == "batch is required":
            # Not an object, or no `batch`: a key in the body still decides 401 before 400.
            body = decode_json(data)
            await require_write_key(request, body if isinstance(body, dict) else None)
            raise bad_request(
                "the body must be an object with a `batch` array", field="batch"
            ) from None
        if field == "batch" and "length" in message:
            raise ApiError(
                413, "too_large", f"a batch holds at most {MAX_BATCH_EVENTS} events", field=field
            ) from None
        raise bad_request(message, field=field) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        decode_json(data)  # answers with what is wrong, naming the field
        raise bad_request("malformed JSON", field="body") from None
    keys = {"writeKey": envelope.writeKey, "write_key": envelope.write_key}
    principal = await require_write_key(request, keys)
    headers = await admit(request, principal)
    ctx = _batch_context(request, principal, envelope.sentAt)
    # Each event is decoded from its own bytes (stored as its payload when nothing
    # changes it), so one bad event is rejected alone.
    raws = [bytes(raw) for raw in envelope.batch]
    shared = {
        name: value
        for name, value in (("context", envelope.context), ("integrations", envelope.integrations))
        if isinstance(value, dict)
    }
    if shared:
        outcomes = await ingest(
            request,
            raws,
            ctx,
            lambda e, c: segment_event(_with_batch_context(decode_event_json(e), shared), c),
        )
    else:
        outcomes = await ingest(request, raws, ctx, lambda e, c: segment_event_json(e, c, None))
    return _many_answer(outcomes, headers)


def _batch_context(request: Incoming, principal: Principal, sent_at: Any) -> RequestContext:
    ctx = _context(request, principal, "segment")
    if sent_at is not None:
        try:
            ctx = replace(ctx, sent_at=parse_time(sent_at))
        except TimestampError as exc:
            raise bad_request(f"sentAt: {exc}", field="sentAt") from exc
    return ctx


_decode_array = msgspec.json.Decoder(list[msgspec.Raw]).decode


async def native_events(request: Incoming) -> Answer:
    settings: Settings = request.app.state.settings
    data = await read_body(request, settings.max_batch_bytes)
    if data.lstrip()[:1] == b"[":
        # An array: each event decoded from its own bytes, so one bad event is rejected alone.
        try:
            events: list[Any] = [bytes(raw) for raw in _decode_array(data)]
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            decode_json(data)  # answers with what is wrong, naming the field
            raise bad_request("malformed JSON", field="body") from None
        principal = await require_write_key(request)
        headers = await admit(request, principal)
        if len(events) > MAX_BATCH_EVENTS:
            raise ApiError(413, "too_large", f"a request holds at most {MAX_BATCH_EVENTS} events")
        ctx = _context(request, principal, "native")
        outcomes = await ingest(request, events, ctx, lambda e, c: segment_event_json(e, c, None))
        return _many_answer(outcomes, headers)
    body = decode_json(data)
    principal = await require_write_key(request, body if isinstance(body, dict) else None)
    headers = await admit(request, principal)
    if not isinstance(body, dict):
        raise bad_request("send an event object or an array of events", field="event")
    ctx = _context(request, principal, "native")
    outcomes = await ingest(request, [body], ctx, lambda e, c: segment_event(e, c, None))
    return _single_answer(outcomes[0], headers)


def _collect_answer(outcome: Outcome, headers: dict[str, str], ctx: RequestContext) -> Answer:
    if outcome.status == "rejected":
        return _single_answer(outcome, headers)
    body = {
        "status": "success",
        "message": "Event received and stored"
        if outcome.status == "accepted"
        else "Event already stored",
        "result": outcome.status,
        "event_id": outcome.messageId,
        "timestamp": ctx.received_at.isoformat(),
    }
    return json_answer(200, body, headers)


async def collect(request: Incoming) -> Answer:
    settings: Settings = request.app.state.settings
    body = decode_json(await read_body(request, settings.max_event_bytes))
    principal = await require_write_key(request, body if isinstance(body, dict) else None)
    headers = await admit(request, principal)
    ctx = _context(request, principal, "collect")
    outcomes = await ingest(request, [body], ctx, collect_event)
    return _collect_answer(outcomes[0], headers, ctx)


async def collect_pixel(request: Incoming) -> Answer:
    settings: Settings = request.app.state.settings
    params: dict[str, Any] = {k: v for k, v in request.query_params.items() if k != "writeKey"}
    if len(request.scope.get("query_string", b"")) > settings.max_event_bytes:
        raise too_large(settings.max_event_bytes, "query string")
    # utm_* parameters of the pixel URL become the attribution of the event.
    utm = {k: params.pop(k) for k in list(params) if k.startswith("utm_")}
    if utm:
        params["attribution"] = {"utmParams": utm}
    principal = await require_write_key(request)
    headers = await admit(request, principal)
    ctx = _context(request, principal, "pixel")
    outcome = (await ingest(request, [params], ctx, collect_event))[0]
    if outcome.status == "rejected":
        raise bad_request(outcome.message or "invalid event", field=outcome.field)
    return Answer(
        200, PIXEL, {**headers, "Cache-Control": "no-store, max-age=0"}, media_type="image/gif"
    )


# (method, path) -> endpoint: what lytics_ingest_api.fast_path serves without Litestar.
ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    **{("POST", f"/v1/{kind}"): _segment_call(kind) for kind in SEGMENT_KINDS},
    ("POST", "/v1/batch"): segment_batch,
    ("POST", "/v1/events"): native_events,
    ("POST", "/collect"): collect,
    ("GET", "/collect"): collect_pixel,
}


# Litestar route handlers for the same endpoints: the OpenAPI document describes them, and
# they answer whatever reaches Litestar (a server run without the fast path, HEAD, ...).
def _documented(path: str, endpoint: Endpoint, **route: Any) -> HTTPRouteHandler:
    async def handler(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        return (await endpoint(request)).response()

    return post(path, tags=["events"], status_code=200, security=WRITE_KEY, **route)(handler)


async def _pixel_handler(request: Request[Any, Any, Any]) -> Response[bytes]:
    return (await collect_pixel(request)).response()


SEGMENT_CALLS = [
    _documented(
        f"/v1/{kind}",
        ENDPOINTS["POST", f"/v1/{kind}"],
        operation_id=f"segment_{kind}",
        summary=f"Segment `{kind}` call",
        operation_class=json_body(struct_body(SegmentEvent)),
        responses=responses(EventAnswer, *WRITE_ERRORS),
    )
    for kind in SEGMENT_KINDS
]

ROUTES = [
    *SEGMENT_CALLS,
    _documented(
        "/v1/batch",
        segment_batch,
        operation_id="segment_batch",
        summary="Segment batch: many calls in one request, answered per event",
        operation_class=json_body(
            struct_body(SegmentBatch, raw_items={"SegmentBatch.batch": SegmentEvent})
        ),
        responses=responses(BatchAnswer, *WRITE_ERRORS, s400=ErrorBody | BatchAnswer),
    ),
    _documented(
        "/v1/events",
        native_events,
        operation_id="events",
        summary="Native events: one event object or an array of them",
        operation_class=json_body(struct_body(SegmentEvent | list[SegmentEvent])),
        # One event is answered as a single call, an array per event.
        responses=responses(EventAnswer | BatchAnswer, *WRITE_ERRORS, s400=ErrorBody | BatchAnswer),
    ),
    _documented(
        "/collect",
        collect,
        operation_id="collect",
        summary="Browser beacon (seed S1 shape); text/plain accepted for sendBeacon",
        operation_class=json_body(struct_body(CollectEvent)),
        responses=responses(CollectAnswer, *WRITE_ERRORS),
    ),
    get(
        "/collect",
        tags=["events"],
        operation_id="collect_pixel",
        summary="Tracking pixel: the event in the query string, answered with a 1x1 GIF",
        media_type="image/gif",
        security=WRITE_KEY,
        responses=responses(None, *WRITE_ERRORS),
    )(_pixel_handler),
]
