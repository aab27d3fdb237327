"""Which time an event happened at (lytics_ingest_api/events/timestamps.py, docs/ingest.md).

An explicit `timestamp` wins; otherwise `receivedAt + (originalTimestamp - sentAt)`;
`originalTimestamp` alone is taken as sent; nothing at all is `receivedAt`; anything
more than the allowed future is clamped to `receivedAt`; an overflowing correction
is a 400 naming `originalTimestamp`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from lytics.settings import Settings
from lytics_ingest_api.events.timestamps import TimestampError, event_time
from tests.support.ingest import Ingest, served_ingest

RECEIVED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FUTURE = timedelta(hours=23)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("timestamp", "original", "sent_at", "expected", "clamped"),
    [
        # timestamp only: as sent
        (RECEIVED - 48 * HOUR, None, None, RECEIVED - 48 * HOUR, False),
        # timestamp + originalTimestamp + sentAt: the explicit timestamp wins
        (
            RECEIVED - 48 * HOUR,
            RECEIVED + 3 * HOUR,
            RECEIVED + 4 * HOUR,
            RECEIVED - 48 * HOUR,
            False,
        ),
        # originalTimestamp + sentAt: the client's clock is 4 h fast, the call was 1 h old
        (None, RECEIVED + 3 * HOUR, RECEIVED + 4 * HOUR, RECEIVED - HOUR, False),
        # originalTimestamp only: as sent
        (None, RECEIVED - 5 * HOUR, None, RECEIVED - 5 * HOUR, False),
        # nothing: receipt time
        (None, None, None, RECEIVED, False),
        # sentAt alone says nothing about the event
        (None, None, RECEIVED - 5 * HOUR, RECEIVED, False),
        # too far ahead, whichever field said so: clamped to receipt
        (RECEIVED + 72 * HOUR, None, None, RECEIVED, True),
        (None, RECEIVED + 72 * HOUR, RECEIVED, RECEIVED, True),
        # year 9999 as an explicit timestamp: no correction to overflow, clamped
        (
            datetime(9999, 12, 31, tzinfo=UTC),
            None,
            datetime(2000, 1, 1, tzinfo=UTC),
            RECEIVED,
            True,
        ),
    ],
)
def test_event_time_rule(
    timestamp: datetime | None,
    original: datetime | None,
    sent_at: datetime | None,
    expected: datetime,
    clamped: bool,
) -> None:
    when = event_time(RECEIVED, timestamp, original, sent_at, FUTURE)
    assert (when.timestamp, when.clamped) == (expected, clamped)


def test_a_correction_leaving_the_datetime_range_is_an_error() -> None:
    with pytest.raises(TimestampError, match="range"):
        event_time(
            RECEIVED,
            None,
            datetime(9999, 12, 31, tzinfo=UTC),
            datetime(2000, 1, 1, tzinfo=UTC),
            FUTURE,
        )
    with pytest.raises(TimestampError, match="range"):
        event_time(
            RECEIVED,
            None,
            datetime(1, 1, 2, tzinfo=UTC),
            datetime(9999, 1, 1, tzinfo=UTC),
            FUTURE,
        )


@pytest.fixture
def api(settings: Settings, engine: Engine) -> Iterator[Ingest]:
    with served_ingest(settings, engine) as ingest:
        yield ingest


def _stored(api: Ingest) -> dict[str, Any]:
    return {
        r.message_id: r
        for r in api.rows(
            "SELECT message_id, timestamp, original_timestamp, sent_at, received_at, "
            "timestamp_clamped FROM raw.events"
        )
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_sdk_shaped_calls_get_the_standard_times(api: Ingest) -> None:
    now = datetime.now(UTC)
    fast = 3 * HOUR  # the client's clock runs 3 h fast
    backdated = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    batch = {
        "sentAt": _iso(now + fast),
        "batch": [
            {  # analytics-node / rudder-sdk-node: originalTimestamp, batch sentAt
                "type": "track",
                "event": "E",
                "userId": "u",
                "messageId": "skewed",
                "originalTimestamp": _iso(now + fast - 10 * timedelta(minutes=1)),
            },
            {  # a historical import: timestamp beside the SDK's own clock fields
                "type": "track",
                "event": "E",
                "userId": "u",
                "messageId": "backdated",
                "timestamp": _iso(backdated),
                "originalTimestamp": _iso(now + fast),
            },
            {  # analytics-python: timestamp, nothing else
                "type": "identify",
                "userId": "u",
                "messageId": "python",
                "timestamp": _iso(backdated + HOUR),
            },
            {"type": "track", "event": "E", "userId": "u", "messageId": "untimed"},
            {
                "type": "track",
                "event": "E",
                "userId": "u",
                "messageId": "future",
                "originalTimestamp": _iso(now + timedelta(days=3)),
                "sentAt": _iso(now),
            },
            {
                "type": "track",
                "event": "E",
                "userId": "u",
                "messageId": "overflow",
                "originalTimestamp": "9999-12-31T00:00:00Z",
                "sentAt": "2000-01-01T00:00:00Z",
            },
        ],
    }
    answer = api.post("/v1/batch", json=batch)
    assert answer.status_code == 200, answer.text
    results = {r.get("messageId") or r["index"]: r for r in answer.json()["results"]}
    assert results[5]["status"] == "rejected"
    assert results[5]["field"] == "originalTimestamp"
    rows = _stored(api)
    assert set(rows) == {"skewed", "backdated", "python", "untimed", "future"}

    skewed = rows["skewed"]
    # receivedAt + (originalTimestamp - sentAt), exactly (times are stored to the microsecond)
    original = datetime.fromisoformat(batch["batch"][0]["originalTimestamp"])  # type: ignore[index]
    sent = datetime.fromisoformat(batch["sentAt"])  # type: ignore[arg-type]
    assert skewed.timestamp == skewed.received_at + (original - sent)
    assert skewed.original_timestamp == original
    assert not skewed.timestamp_clamped

    assert rows["backdated"].timestamp == backdated
    assert rows["python"].timestamp == backdated + HOUR
    assert rows["python"].original_timestamp == backdated + HOUR
    assert rows["untimed"].timestamp == rows["untimed"].received_at
    future = rows["future"]
    assert future.timestamp_clamped
    assert future.timestamp == future.received_at


def test_overflowing_correction_of_a_single_call_is_a_400(api: Ingest) -> None:
    answer = api.post(
        "/v1/track",
        json={
            "event": "E",
            "userId": "u",
            "originalTimestamp": "9999-12-31T00:00:00Z",
            "sentAt": "2000-01-01T00:00:00Z",
        },
    )
    assert answer.status_code == 400
    assert answer.json()["field"] == "originalTimestamp"
    explicit = api.post(
        "/v1/track",
        json={
            "event": "E",
            "userId": "u",
            "messageId": "explicit",
            "timestamp": "9999-12-31T00:00:00Z",
            "sentAt": "2000-01-01T00:00:00Z",
        },
    )
    assert explicit.status_code == 200, explicit.text
    assert _stored(api)["explicit"].timestamp_clamped
