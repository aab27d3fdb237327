"""Event intake over real HTTP into real Postgres.

What must hold: a 2xx means the rows are committed; the same messageId is
stored once however often it is sent; every bad input gets a clear 4xx that
names the problem and stores nothing.
"""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from lytics.settings import Settings
from lytics_ingest_api.app import create_app
from tests.support.frozen_limiter import freeze_rate_limit
from tests.support.http import serve
from tests.support.ingest import Ingest, new_project, served_ingest

COUNT = "SELECT count(*) FROM raw.events"


@pytest.mark.parametrize(
    ("call", "body"),
    [
        ("track", {"event": "Signed Up", "userId": "u1", "properties": {"plan": "pro"}}),
        ("identify", {"userId": "u1", "traits": {"email": "a@example.com"}}),
        ("page", {"anonymousId": "a1", "name": "Home", "properties": {"path": "/"}}),
        ("screen", {"anonymousId": "a1", "name": "Settings"}),
        ("group", {"userId": "u1", "groupId": "g1"}),
        ("alias", {"userId": "u2", "previousId": "u1"}),
    ],
)
def test_every_segment_call_is_stored(api: Ingest, call: str, body: dict[str, object]) -> None:
    answer = api.post(f"/v1/{call}", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "accepted"
    row = api.rows("SELECT type, project_id, source, payload FROM raw.events")
    assert [(r.type, r.project_id, r.source) for r in row] == [(call, api.project_id, "segment")]
    assert row[0].payload == body


def test_page_context_and_campaign_are_extracted(api: Ingest) -> None:
    api.post(
        "/v1/page",
        json={
            "anonymousId": "a1",
            "context": {
                "page": {
                    "url": "https://s.io/p?x",
                    "path": "/p",
                    "referrer": "https://google.com/",
                },
                "campaign": {"source": "newsletter", "medium": "email", "name": "launch"},
                "sessionId": "s-1",
                "userAgent": "UA/1",
                "ip": "203.0.113.9",
            },
        },
    )
    row = api.rows(
        "SELECT url, path, referrer, utm_source, utm_medium, utm_campaign, session_id, "
        "raw.event_user_agent(source, payload, user_agent), raw.event_ip(source, payload, ip) "
        "FROM raw.events"
    )[0]
    assert tuple(row) == (
        "https://s.io/p?x",
        "/p",
        "https://google.com/",
        "newsletter",
        "email",
        "launch",
        "s-1",
        "UA/1",
        "203.0.113.9",
    )


STORED_ONCE = (
    "SELECT ip, user_agent, raw.event_ip(source, payload, ip) AS event_ip,"
    " raw.event_user_agent(source, payload, user_agent) AS event_user_agent"
    " FROM raw.events WHERE message_id = :m"
)


@pytest.mark.parametrize(
    ("context", "stored", "event_values"),
    [
        # The payload's values win and are not stored a second time.
        ({"ip": "203.0.113.9", "userAgent": "UA/1"}, (None, None), ("203.0.113.9", "UA/1")),
        # Without them, the request's address and header are stored.
        ({}, ("127.0.0.1", "header/1"), ("127.0.0.1", "header/1")),
        # An empty or non-string value is no value (the payload keeps it as sent).
        ({"ip": "", "userAgent": 7}, ("127.0.0.1", "header/1"), ("127.0.0.1", "header/1")),
        ({"ip": "203.0.113.9"}, (None, "header/1"), ("203.0.113.9", "header/1")),
    ],
)
def test_ip_and_user_agent_are_stored_once(
    api: Ingest,
    context: dict[str, object],
    stored: tuple[str | None, str | None],
    event_values: tuple[str, str],
) -> None:
    answer = api.post(
        "/v1/track",
        json={"event": "E", "userId": "u", "messageId": "m", "context": context},
        headers={"User-Agent": "header/1"},
    )
    assert answer.status_code == 200, answer.text
    row = api.rows(STORED_ONCE, m="m")[0]
    assert (row.ip, row.user_agent) == stored
    assert (row.event_ip, row.event_user_agent) == event_values


def test_a_beacons_user_agent_is_stored_once_and_its_address_is_the_requests(
    api: Ingest,
) -> None:
    beacon = {"eventType": "click", "visitorId": "v", "messageId": "b", "userAgent": "UA/2"}
    answer = httpx.post(
        f"{api.base}/collect?writeKey={api.write_key}",
        content=json.dumps({**beacon, "ip": "198.51.100.1"}),
        headers={"Content-Type": "text/plain", "User-Agent": "header/1"},
    )
    assert answer.status_code == 200, answer.text
    pixel = httpx.get(
        f"{api.base}/collect",
        params={"writeKey": api.write_key, "eventType": "e", "visitorId": "v", "messageId": "p"},
        headers={"User-Agent": "header/1"},
    )
    assert pixel.status_code == 200
    row = api.rows(STORED_ONCE, m="b")[0]
    assert tuple(row) == ("127.0.0.1", None, "127.0.0.1", "UA/2")
    row = api.rows(STORED_ONCE, m="p")[0]
    assert tuple(row) == ("127.0.0.1", "header/1", "127.0.0.1", "header/1")


def test_write_key_in_body_text_plain_and_gzip_are_accepted(api: Ingest) -> None:
    # sendBeacon: text/plain, key in the body, no Authorization header.
    beacon = {"type": "track", "event": "Left", "anonymousId": "a", "writeKey": api.write_key}
    answer = httpx.post(
        f"{api.base}/v1/track",
        content=json.dumps(beacon),
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert answer.status_code == 200, answer.text
    # The key authenticated the request; it is not stored with the event.
    assert "writeKey" not in api.rows("SELECT payload FROM raw.events")[0].payload
    batch = {"batch": [{"type": "track", "event": "E", "userId": f"u{i}"} for i in range(50)]}
    zipped = api.post(
        "/v1/batch",
        content=gzip.compress(json.dumps(batch).encode()),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert zipped.status_code == 200, zipped.text
    assert zipped.json()["accepted"] == 50
    assert api.scalar(COUNT) == 51


def test_batch_answers_per_event_and_stores_only_valid_events(api: Ingest) -> None:
    batch = {
        "batch": [
            {"type": "track", "event": "Ok", "userId": "u", "messageId": "m1"},
            {"type": "track", "userId": "u", "messageId": "m2"},
            {"type": "nope", "userId": "u"},
            {"type": "page", "messageId": "m3"},
            {"type": "track", "event": "Ok", "userId": "u", "messageId": "m1"},
            "not an object",
        ]
    }
    answer = api.post("/v1/batch", json=batch)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (1, 1, 4)
    assert [(r["status"], r.get("field")) for r in body["results"]] == [
        ("accepted", None),
        ("rejected", "event"),
        ("rejected", "type"),
        ("rejected", "userId"),
        ("duplicate", None),
        ("rejected", "event"),
    ]
    assert api.scalar(COUNT) == 1


def test_replaying_the_same_batch_ten_times_leaves_one_row_per_event(api: Ingest) -> None:
    batch = {
        "batch": [
            {"type": "track", "event": "E", "userId": "u", "messageId": f"m{i}"} for i in range(20)
        ]
    }
    first = api.post("/v1/batch", json=batch).json()
    assert first["accepted"] == 20
    for _ in range(9):
        again = api.post("/v1/batch", json=batch).json()
        assert (again["accepted"], again["duplicate"]) == (0, 20)
    assert api.scalar(COUNT) == 20


def test_retried_event_without_message_id_is_recognised_when_it_has_a_timestamp(
    api: Ingest,
) -> None:
    event = {"event": "E", "userId": "u", "timestamp": "2026-01-01T10:00:00Z"}
    first = api.post("/v1/track", json=event).json()
    second = api.post("/v1/track", json=event).json()
    assert first["messageId"] == second["messageId"]
    assert second["status"] == "duplicate"
    # Without any client time nothing tells a retry from a second event.
    untimed = [api.post("/v1/track", json={"event": "E", "userId": "u"}).json() for _ in range(2)]
    assert untimed[0]["messageId"] != untimed[1]["messageId"]
    assert api.scalar(COUNT) == 3


@pytest.mark.parametrize(
    ("auth", "headers", "expected"),
    [
        (None, {}, "missing write key"),
        (("lyw_not-a-real-key", ""), {}, "unknown or revoked"),
        (None, {"Authorization": "Basic !!!notbase64"}, "missing write key"),
    ],
)
def test_unauthenticated_requests_get_401_and_store_nothing(
    api: Ingest, auth: tuple[str, str] | None, headers: dict[str, str], expected: str
) -> None:
    answer = httpx.post(
        f"{api.base}/v1/track", json={"event": "E", "userId": "u"}, auth=auth, headers=headers
    )
    assert answer.status_code == 401
    assert expected in answer.json()["message"]
    assert api.scalar(COUNT) == 0


def test_secret_key_is_not_a_write_key_and_revoked_keys_fail(
    settings: Settings, engine: Engine
) -> None:
    uncached = settings.model_copy(update={"key_cache_seconds": 0.0})
    with served_ingest(uncached, engine) as api:
        event = {"event": "E", "userId": "u"}
        assert api.post("/v1/track", json=event, auth=(api.secret_key, "")).status_code == 401
        assert api.post("/v1/track", json=event).status_code == 200
        with api.engine.begin() as conn:
            conn.execute(text("UPDATE app.api_keys SET revoked_at = now() WHERE kind = 'write'"))
        answer = api.post("/v1/track", json=event)
        assert answer.status_code == 401
        assert "revoked" in answer.json()["message"]
        assert api.scalar(COUNT) == 1


@pytest.mark.parametrize(
    ("content", "headers", "status", "needle"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "malformed JSON"),
        (b"", {"Content-Type": "application/json"}, 400, "empty"),
        (b"[1,2]", {"Content-Type": "application/json"}, 400, "JSON object"),
        (b'{"event": 5, "userId": "u"}', {"Content-Type": "application/json"}, 400, "event"),
        (b'{"event": "E"}', {"Content-Type": "application/json"}, 400, "userId or anonymousId"),
        (b'{"event": "E", "userId": "u", "properties": []}', {}, 400, "properties"),
        (b'{"event": "E", "userId": "u", "timestamp": "yesterday"}', {}, 400, "timestamp"),
        (
            b'{"event": "E", "userId": "u", "messageId": "' + b"x" * 101 + b'"}',
            {},
            400,
            "messageId",
        ),
        (b'{"event": "E", "userId": "u"}', {"Content-Encoding": "br"}, 415, "Content-Encoding"),
        (b"not gzip at all", {"Content-Encoding": "gzip"}, 400, "gzip"),
    ],
)
def test_malformed_input_is_answered_precisely_and_stores_nothing(
    api: Ingest, content: bytes, headers: dict[str, str], status: int, needle: str
) -> None:
    answer = api.post("/v1/track", content=content, headers=headers)
    assert answer.status_code == status, answer.text
    assert needle in answer.text
    assert api.scalar(COUNT) == 0


def test_single_event_over_32kb_is_413(api: Ingest) -> None:
    big = {"event": "E", "userId": "u", "properties": {"blob": "x" * 33_000}}
    answer = api.post("/v1/track", json=big)
    assert answer.status_code == 413
    assert answer.json()["error"] == "too_large"
    # Inside a batch the same event is rejected alone.
    batch = {"batch": [{"type": "track", **big}, {"type": "track", "event": "E", "userId": "u"}]}
    body = api.post("/v1/batch", json=batch).json()
    assert [r["status"] for r in body["results"]] == ["rejected", "accepted"]
    assert body["results"][0]["error"] == "too_large"
    assert api.scalar(COUNT) == 1


def test_batch_limit_is_measured_after_decompression_and_gzip_bombs_are_refused(
    api: Ingest,
) -> None:
    events = [
        {"type": "track", "event": "E", "userId": "u", "properties": {"p": "y" * 20_000}}
    ] * 30
    plain = json.dumps({"batch": events}).encode()
    assert len(plain) > 500 * 1024
    zipped = gzip.compress(plain)
    assert len(zipped) < 10 * 1024  # small on the wire, too big once decompressed
    answer = api.post("/v1/batch", content=zipped, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 413
    assert "decompressed" in answer.json()["message"]
    bomb = gzip.compress(b"[" + b" " * 200_000_000 + b"]", compresslevel=9)
    answer = api.post("/v1/batch", content=bomb, headers={"Content-Encoding": "gzip"})
    assert answer.status_code == 413
    assert api.scalar(COUNT) == 0


def test_rate_limit_answers_429_with_ratelimit_headers(settings: Settings, engine: Engine) -> None:
    limited = settings.model_copy(update={"rate_limit_per_second": 1.0, "rate_limit_burst": 3})
    _, write_key, _ = new_project(engine, "site")
    app = create_app(limited)
    freeze_rate_limit(app)  # no refill between requests, however slow the machine
    with serve(app) as base:
        answers = [
            httpx.post(f"{base}/v1/track", json={"event": "E", "userId": "u"}, auth=(write_key, ""))
            for _ in range(5)
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert answers[2].headers["RateLimit-Remaining"] == "0"
    refused = answers[3]
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["RateLimit-Reset"] == "3"
    assert refused.json()["error"] == "rate_limited"
    with engine.connect() as conn:
        assert conn.execute(text(COUNT)).scalar() == 3


def test_project_origin_allow_list(settings: Settings, engine: Engine) -> None:
    with served_ingest(settings, engine, allowed_origins=["https://shop.example"]) as api:
        ok = api.post(
            "/v1/track",
            json={"event": "E", "userId": "u"},
            headers={"Origin": "https://shop.example"},
        )
        evil = api.post(
            "/v1/track",
            json={"event": "E", "userId": "u"},
            headers={"Origin": "https://evil.example"},
        )
        server_side = api.post(
            "/v1/track", json={"event": "E", "userId": "u"}
        )  # no Origin: not a browser
        preflight = httpx.options(
            f"{api.base}/v1/track",
            headers={
                "Origin": "https://shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,authorization",
            },
        )
        assert (ok.status_code, evil.status_code, server_side.status_code) == (200, 403, 200)
        assert evil.json()["error"] == "origin_not_allowed"
        assert preflight.status_code in (200, 204)
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert api.scalar(COUNT) == 2


def test_client_ip_trusts_forwarded_for_only_from_configured_proxies(
    settings: Settings, engine: Engine
) -> None:
    forwarded = {"X-Forwarded-For": "198.51.100.7, 10.0.0.2"}
    with served_ingest(settings, engine) as api:
        api.post(
            "/v1/track",
            json={"event": "E", "userId": "u", "messageId": "direct"},
            headers=forwarded,
        )
        assert api.scalar("SELECT ip FROM raw.events WHERE message_id = 'direct'") == "127.0.0.1"
    proxied = settings.model_copy(update={"trusted_proxies": "127.0.0.1/32, 10.0.0.0/8"})
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app.api_keys"))
        conn.execute(text("DELETE FROM app.projects"))
    with served_ingest(proxied, engine) as api:
        api.post(
            "/v1/track",
            json={"event": "E", "userId": "u", "messageId": "via-proxy"},
            headers=forwarded,
        )
        assert (
            api.scalar("SELECT ip FROM raw.events WHERE message_id = 'via-proxy'") == "198.51.100.7"
        )


def test_collect_beacon_and_pixel(api: Ingest) -> None:
    s1_event = {
        "eventType": "pageview",
        "sessionId": "sess_abc123",
        "visitorId": "vis_xyz789",
        "siteId": "example-com",
        "timestamp": "2025-06-22T12:00:00Z",
        "url": "https://example.com/page",
        "path": "/page",
        "attribution": {"utmParams": {"utm_source": "google", "utm_medium": "cpc"}},
    }
    answer = httpx.post(
        f"{api.base}/collect?writeKey={api.write_key}",
        content=json.dumps(s1_event),
        headers={"Content-Type": "text/plain"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "success"
    pixel = httpx.get(
        f"{api.base}/collect",
        params={
            "writeKey": api.write_key,
            "eventType": "signup",
            "visitorId": "v2",
            "utm_source": "x",
        },
    )
    assert pixel.status_code == 200
    assert pixel.headers["content-type"] == "image/gif"
    assert pixel.content.startswith(b"GIF89a")
    rows = api.rows(
        "SELECT type, event, anonymous_id, session_id, path, utm_source, utm_medium, source "
        "FROM raw.events ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        ("page", None, "vis_xyz789", "sess_abc123", "/page", "google", "cpc", "collect"),
        ("track", "signup", "v2", None, None, "x", None, "pixel"),
    ]
    missing = httpx.get(f"{api.base}/collect", params={"writeKey": api.write_key, "visitorId": "v"})
    assert missing.status_code == 400
    assert missing.json()["field"] == "eventType"


def test_native_events_accepts_object_or_array(api: Ingest) -> None:
    one = api.post(
        "/v1/events", json={"type": "track", "event": "E", "userId": "u", "messageId": "n1"}
    )
    many = api.post(
        "/v1/events",
        json=[
            {"type": "page", "anonymousId": "a", "messageId": "n2"},
            {"event": "E", "userId": "u", "messageId": "n1"},
        ],
    )
    assert one.json()["status"] == "accepted"
    assert [r["status"] for r in many.json()["results"]] == ["accepted", "duplicate"]
    assert api.post("/v1/events", json="nope").status_code == 400
    assert api.scalar("SELECT count(*) FROM raw.events WHERE source = 'native'") == 2


def test_answers_carry_request_id_and_security_headers(api: Ingest) -> None:
    answer = api.post(
        "/v1/track", json={"event": "E", "userId": "u"}, headers={"X-Request-ID": "abc-123"}
    )
    assert answer.headers["x-request-id"] == "abc-123"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    generated = api.post(
        "/v1/track", json={"event": "E", "userId": "u"}, headers={"X-Request-ID": "bad id!"}
    )
    assert generated.headers["x-request-id"] != "bad id!"
    assert len(generated.headers["x-request-id"]) == 32


def _scraped(api: Ingest) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of `GET /metrics`, by name and labels."""
    families = text_string_to_metric_families(api.get("/metrics").text)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
    }


def test_prometheus_metrics_count_outcomes(api: Ingest) -> None:
    # The registry is process-wide and earlier tests filled it: compare before and after.
    before = _scraped(api)
    api.post(
        "/v1/batch",
        json={
            "batch": [
                {"type": "track", "event": "E", "userId": "u", "messageId": "p1"},
                {"type": "x"},
            ]
        },
    )
    api.post("/v1/track", json={"event": "E", "userId": "u", "messageId": "p1"})
    after = _scraped(api)

    def grew(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("lytics_events_total", reason="", result="accepted") == 1
    assert grew("lytics_events_total", reason="", result="duplicate") == 1
    assert grew("lytics_events_total", reason="invalid", result="rejected") == 1
    batch = {"method": "POST", "route": "/v1/batch", "status": "200"}
    assert grew("lytics_http_requests_total", **batch) == 1
    assert grew("lytics_writer_batch_rows_count") >= 1
    assert ("lytics_writer_queue_depth", frozenset()) in after


def test_nul_characters_are_refused_naming_the_field(api: Ingest) -> None:
    # Postgres text/jsonb cannot hold U+0000: a 400 naming where it is, nothing stored.
    for event, field in [
        ({"event": "E\u0000vil", "userId": "u"}, "event"),
        ({"event": "E", "userId": "u", "properties": {"k": ["v\u0000"]}}, "properties.k[0]"),
        ({"event": "E", "userId": "u", "properties": {"k\u0000": 1}}, "properties.k\\u0000"),
    ]:
        answer = api.post("/v1/track", json=event)
        assert answer.status_code == 400, answer.text
        assert answer.json()["field"] == field
        assert "NUL" in answer.json()["message"]
    assert api.scalar(COUNT) == 0
