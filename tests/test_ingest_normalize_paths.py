"""A batch's events are normalized from their JSON bytes; single calls from decoded dicts.

Both must give the same row for the same event, or the same rejection: the bytes path
only skips work (fields it never reads, a second encoding of the payload). Property
tests generate Segment-shaped events with values of every JSON type in the places
that are read, and compare the two paths field by field. The payload may differ in
bytes (the bytes path stores the event as sent), never in the JSON document.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from lytics_ingest_api.events.normalize import (
    EventError,
    EventRow,
    RequestContext,
    collect_event,
    segment_event,
    segment_event_json,
)

CTX = RequestContext(
    project_id=7,
    received_at=datetime(2026, 12, 4, 12, 0, tzinfo=UTC),
    source="segment",
    max_event_bytes=2048,
    max_future=timedelta(hours=23),
    ip="203.0.113.9",
    user_agent="agent",
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["", "track", "page", "screen", "identify", "/p", "https://x.example/a"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
times = st.one_of(
    st.sampled_from(["2026-12-04T11:59:00Z", "2026-12-04T11:59:00.123+02:00", "yesterday"]),
    st.integers(1_700_000_000, 1_800_000_000_000),
    json_values,
)


def maybe(keys: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects holding any subset of `keys`, each with its strategy's value."""
    return st.fixed_dictionaries({}, optional=keys)


page = maybe({"url": json_values, "path": json_values, "referrer": json_values})
campaign = maybe({"source": json_values, "medium": json_values, "name": json_values})
context = maybe(
    {
        "page": st.one_of(page, json_values),
        "campaign": st.one_of(campaign, json_values),
        "ip": json_values,
        "userAgent": json_values,
        "sessionId": json_values,
        "library": json_values,
    }
)
# Events whose shape the bytes path handles itself (objects where objects belong, a
# messageId, no key in the body): their leaves still take every JSON type.
well_shaped = st.fixed_dictionaries(
    {"messageId": st.text(min_size=1, max_size=120)},
    optional={
        "type": st.one_of(st.sampled_from(["track", "page", "screen", "identify"]), json_values),
        "event": st.one_of(st.just("Signed Up"), json_values),
        "name": json_values,
        "userId": st.one_of(st.just("u1"), json_values),
        "user_id": json_values,
        "anonymousId": st.one_of(st.just("a1"), json_values),
        "anonymous_id": json_values,
        "timestamp": times,
        "originalTimestamp": times,
        "sentAt": times,
        "sessionId": json_values,
        "properties": st.one_of(
            st.none(), maybe({"sessionId": json_values, "url": json_values, "path": json_values})
        ),
        "traits": st.one_of(st.none(), st.dictionaries(st.text(max_size=4), json_values)),
        "context": st.one_of(
            st.none(),
            maybe(
                {
                    "page": st.one_of(st.none(), page),
                    "campaign": st.one_of(st.none(), campaign),
                    "ip": json_values,
                    "userAgent": json_values,
                    "sessionId": json_values,
                    "library": json_values,
                }
            ),
        ),
        "extra": json_values,
    },
)
# Anything at all in the places that are read, including what the bytes path hands on.
wild = maybe(
    {
        "type": json_values,
        "event": json_values,
        "userId": json_values,
        "anonymousId": json_values,
        "messageId": json_values,
        "message_id": json_values,
        "timestamp": times,
        "originalTimestamp": times,
        "properties": st.one_of(maybe({"sessionId": json_values}), json_values),
        "traits": json_values,
        "context": st.one_of(context, json_values),
        "writeKey": json_values,
    }
)


def _outcome(normalize: Any, event: Any) -> EventRow | tuple[str, str, str]:
    try:
        return normalize(event)  # type: ignore[no-any-return]
    except EventError as exc:
        return (exc.code, exc.field, exc.message)


def _comparable(result: EventRow | tuple[str, str, str]) -> Any:
    if isinstance(result, tuple):
        return result
    row = asdict(result)
    row["payload"] = json.loads(row["payload"])
    if row["message_id"].startswith("gen-") and row["original_timestamp"] is None:
        row["message_id"] = "gen-<random>"  # a random id: only its form can be compared
    return row


def _same(event: Any, type_hint: str | None) -> None:
    data = msgspec.json.encode(event)
    from_bytes = _outcome(lambda e: segment_event_json(e, CTX, type_hint), data)
    from_dict = _outcome(lambda e: segment_event(e, CTX, type_hint), event)
    assert _comparable(from_bytes) == _comparable(from_dict)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=well_shaped, type_hint=st.sampled_from([None, "track", "page"]))
def test_well_shaped_events_give_the_same_row_or_rejection_on_both_paths(
    event: dict[str, Any], type_hint: str | None
) -> None:
    _same(event, type_hint)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=st.one_of(wild, json_values), type_hint=st.sampled_from([None, "track"]))
def test_anything_else_gives_the_same_row_or_rejection_on_both_paths(
    event: Any, type_hint: str | None
) -> None:
    _same(event, type_hint)


def test_the_bytes_path_stores_the_event_as_sent() -> None:
    data = b'{"type":"track", "event":"E","userId":"u","messageId":"m","properties":{"b":1,"a":2}}'
    row = segment_event_json(data, CTX)
    assert row.payload == data.decode()  # byte for byte: key order and spacing kept


BASE = b'{"type":"track","event":"E","userId":"u","messageId":"m",'


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (BASE + b'"properties":[1]}', "properties"),
        (BASE + b'"context":{"page":"x"}}', "context.page"),
        (BASE + b'"traits":3}', "traits"),
        (b"[1, 2]", "event"),
    ],
)
def test_a_part_that_must_be_an_object_is_named(data: bytes, field: str) -> None:
    with pytest.raises(EventError) as caught:
        segment_event_json(data, CTX)
    assert caught.value.field == field


def test_what_the_bytes_path_hands_to_the_dict_path() -> None:
    # A key in the event is not stored with it.
    keyed = segment_event_json(
        b'{"type":"track","event":"E","userId":"u","messageId":"m","writeKey":"lyw_x"}', CTX
    )
    assert "writeKey" not in json.loads(keyed.payload)
    # NUL cannot be stored: the event is rejected, naming where the NUL is.
    with pytest.raises(EventError) as nul:
        segment_event_json(
            b'{"type":"track","event":"E","userId":"u","messageId":"m","p":{"k":"\\u0000"}}', CTX
        )
    assert nul.value.field == "p.k"
    # Without a messageId, a retry is recognised by its content, however it was spaced.
    spaced = b'{"type": "track", "event": "E", "userId": "u", "timestamp": "2026-12-04T11:00:00Z"}'
    tight = b'{"type":"track","event":"E","userId":"u","timestamp":"2026-12-04T11:00:00Z"}'
    assert segment_event_json(spaced, CTX).message_id == segment_event_json(tight, CTX).message_id
    # The size limit applies to the bytes as sent.
    with pytest.raises(EventError) as caught:
        segment_event_json(
            b'{"type":"track","event":"E","userId":"u","messageId":"m","p":"' + b"x" * 3000 + b'"}',
            CTX,
        )
    assert caught.value.code == "too_large"


# ip and user agent are stored once (migration 0014): the normalizer keeps the request's
# value only when the payload holds none, and the database's functions read the event's
# value back. Whatever a client puts there, the two must agree with the rule as stated
# here: a non-empty string in the payload wins, else the request's value.
READ_BACK = text(
    "SELECT raw.event_ip(:source, CAST(:payload AS jsonb), :ip),"
    " raw.event_user_agent(:source, CAST(:payload AS jsonb), :user_agent)"
)


def _sent(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _read_back(engine: Engine, row: EventRow) -> tuple[str | None, str | None]:
    with engine.connect() as conn:
        found = conn.execute(
            READ_BACK,
            {
                "source": row.source,
                "payload": row.payload,
                "ip": row.ip,
                "user_agent": row.user_agent,
            },
        ).one()
    return found[0], found[1]


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(context=st.one_of(st.none(), context), through_bytes=st.booleans())
def test_the_database_reads_back_the_ip_and_user_agent_of_a_segment_event(
    engine: Engine, context: Any, through_bytes: bool
) -> None:
    event = {"type": "track", "event": "E", "userId": "u", "messageId": "m", "context": context}
    try:
        if through_bytes:
            row = segment_event_json(msgspec.json.encode(event), CTX)
        else:
            row = segment_event(event, CTX)
    except EventError:
        return  # refused (a NUL, a context that is not an object): nothing is stored
    sent = context if isinstance(context, dict) else {}
    expected = (_sent(sent.get("ip")) or CTX.ip, _sent(sent.get("userAgent")) or CTX.user_agent)
    assert _read_back(engine, row) == expected


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(extra=maybe({"userAgent": json_values, "ip": json_values}))
def test_the_database_reads_back_the_ip_and_user_agent_of_a_beacon(
    engine: Engine, extra: dict[str, Any]
) -> None:
    beacon = {"eventType": "click", "visitorId": "v", "messageId": "m", **extra}
    try:
        row = collect_event(beacon, replace(CTX, source="collect"))
    except EventError:
        return
    # A beacon's own `ip` is never taken: its address is the request's.
    assert _read_back(engine, row) == (CTX.ip, _sent(extra.get("userAgent")) or CTX.user_agent)
