"""Session replay intake (seed S4's shapes): sessions once, event batches once."""

from __future__ import annotations

import pytest

from tests.support.ingest import Ingest

START = {
    "sessionId": "session_1234567890_abc123",
    "userId": "user_123",
    "userEmail": "user@example.com",
    "metadata": {
        "url": "https://example.com",
        "referrer": "https://google.com",
        "userAgent": "Mozilla/5.0",
        "screen": {"width": 1920, "height": 1080},
        "viewport": {"width": 1920, "height": 937},
        "timestamp": 1700000000000,
    },
}
RRWEB = [
    {"type": 4, "data": {"href": "https://example.com"}, "timestamp": 1700000000100},
    {"type": 2, "data": {"node": {}}, "timestamp": 1700000000200},
    {"type": 3, "data": {"source": 1}, "timestamp": 1700000005000},
]


@pytest.mark.parametrize("path", ["/v1/sessions/start", "/api/sessions/start"])
def test_session_start_is_stored_once(api: Ingest, path: str) -> None:
    key = {"X-API-Key": api.write_key}
    first = api.post(path, json=START, headers=key, auth=None)
    second = api.post(path, json=START, headers=key, auth=None)
    assert (first.json()["status"], second.json()["status"]) == ("created", "duplicate")
    row = api.rows(
        "SELECT session_id, user_id, url, referrer, user_agent, metadata FROM raw.replay_sessions"
    )
    assert len(row) == 1
    assert (row[0].url, row[0].user_agent) == ("https://example.com", "Mozilla/5.0")
    assert row[0].metadata["viewport"] == {"width": 1920, "height": 937}


def test_event_batches_dedupe_on_batch_identity(api: Ingest) -> None:
    key = {"X-API-Key": api.write_key}
    sid = START["sessionId"]
    for _ in range(10):
        answer = api.post(
            f"/v1/sessions/{sid}/events", json={"events": RRWEB}, headers=key, auth=None
        )
        assert answer.status_code == 200, answer.text
    legacy = api.post(
        "/api/ingest",
        json={"sessionId": sid, "events": RRWEB[:1], "timestamp": 1},
        headers=key,
        auth=None,
    )
    assert legacy.json()["status"] == "created"
    rows = api.rows(
        "SELECT event_count, first_timestamp, last_timestamp FROM raw.replay_events ORDER BY id"
    )
    assert [r.event_count for r in rows] == [3, 1]
    assert (rows[0].last_timestamp - rows[0].first_timestamp).total_seconds() == pytest.approx(4.9)
    with_id = {"events": RRWEB, "batchId": "b-7"}
    answers = [
        api.post(f"/v1/sessions/{sid}/events", json=with_id, headers=key, auth=None).json()[
            "status"
        ]
        for _ in range(2)
    ]
    assert answers == ["created", "duplicate"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/sessions/start", {"metadata": {}}, "sessionId"),
        ("/v1/sessions/start", {"sessionId": "s", "metadata": []}, "metadata"),
        (
            "/v1/sessions/start",
            {"sessionId": "s", "metadata": {"timestamp": "soon"}},
            "metadata.timestamp",
        ),
        ("/v1/sessions/s/events", {"events": []}, "events"),
        ("/v1/sessions/s/events", {"events": "x"}, "events"),
        ("/api/ingest", {"events": [{}]}, "sessionId"),
    ],
)
def test_bad_replay_input_names_the_field(api: Ingest, path: str, body: object, field: str) -> None:
    answer = api.post(path, json=body, headers={"X-API-Key": api.write_key}, auth=None)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field
    assert api.scalar("SELECT count(*) FROM raw.replay_events") == 0


def test_replay_needs_a_valid_key(api: Ingest) -> None:
    assert api.post("/v1/sessions/start", json=START, auth=None).status_code == 401
    bad = api.post("/v1/sessions/start", json=START, headers={"X-API-Key": "lyw_nope"}, auth=None)
    assert bad.status_code == 401
    assert api.scalar("SELECT count(*) FROM raw.replay_sessions") == 0
