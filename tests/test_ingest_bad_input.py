"""Hand-made bad input on every write endpoint: a clear 4xx naming the field, never a 500.

For each endpoint that stores something (the Segment calls, batch, native events,
beacons and pixels, metrics, replay sessions and batches, the three webhook kinds),
the same cases: no key, malformed JSON, an empty body, an oversized body, the same
request twice, bytes that are not UTF-8, nesting beyond the documented limit,
nesting too deep to decode at all, a NUL, a number out of range. The bad value is
always at the field `x` under the endpoint's `prefix`, so the answer's `field` can be
checked. Batch-shaped endpoints answer per event: the bad event is rejected alone,
its neighbour stored. Webhooks keep their signature semantics: the verified bytes
are stored whatever they hold, only the parsed copy (`payload`) is left out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from lytics.crypto import Cipher
from lytics.settings import Settings
from lytics.webhook_secrets import CIPHER_PURPOSE, set_secrets
from tests.support import TEST_SECRET
from tests.support.ingest import Ingest, served_ingest

RESEND_KEY = b"resend-signing-key-24byt"
RESEND_SECRET = "whsec_" + base64.b64encode(RESEND_KEY).decode()
GITHUB_SECRET = "gh-webhook-secret-0123456789"
ACME_SECRET = "acme-shared-secret-abcdef"

NOT_UTF8 = b'"caf\xe9 \xff"'
NUL = b'"a\\u0000b"'
OVERFLOW = b"1e1000000"
DEEP = b"[" * 600 + b"]" * 600  # beyond 64 (events, metadata) and 512 (replay events)
UNDECODABLE = b"[" * 5000 + b"]" * 5000  # beyond what any JSON decoder here recurses into
GOOD = b'"ok"'


@pytest.fixture
def api(settings: Settings, engine: Engine) -> Iterator[Ingest]:
    with served_ingest(settings, engine) as ingest:
        with engine.begin() as conn:
            cipher = Cipher(TEST_SECRET, CIPHER_PURPOSE)
            for source, secret in (
                ("resend", RESEND_SECRET),
                ("github", GITHUB_SECRET),
                ("acme", ACME_SECRET),
            ):
                set_secrets(conn, cipher, ingest.project_id, source, [secret])
        yield ingest


_ids = itertools.count()


def _id() -> str:
    return f"m{next(_ids)}-{uuid.uuid4().hex[:8]}"


# --- the endpoints --------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    path: str
    auth: str  # write, secret, resend, github, hmac
    prefix: str  # where `x` sits: the answer's field is prefix + "x"
    make: Callable[[bytes, str], bytes]  # (value of x, id) -> body
    limit: int  # body bytes beyond which the answer is 413
    table: str  # where a stored request lands
    per_event: bool = False  # a batch: answered per event, the bad one rejected alone

    def headers(self, api: Ingest, body: bytes, signed: bool = True) -> dict[str, str]:
        if self.auth == "write":
            key = base64.b64encode(f"{api.write_key}:".encode()).decode()
            return {"Authorization": f"Basic {key}"} if signed else {}
        if self.auth == "secret":
            return api.bearer() if signed else {}
        if not signed:
            return {}
        if self.auth == "resend":
            ts = str(int(time.time()))
            msg = f"msg_{hashlib.sha256(body).hexdigest()[:16]}"
            digest = hmac.new(RESEND_KEY, f"{msg}.{ts}.".encode() + body, hashlib.sha256)
            return {
                "svix-id": msg,
                "svix-timestamp": ts,
                "svix-signature": "v1," + base64.b64encode(digest.digest()).decode(),
            }
        if self.auth == "github":
            sig = hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
            return {
                "X-Hub-Signature-256": f"sha256={sig}",
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": hashlib.sha256(body).hexdigest()[:32],
            }
        return {"X-Signature": hmac.new(ACME_SECRET.encode(), body, hashlib.sha256).hexdigest()}

    @property
    def webhook(self) -> bool:
        return self.auth in ("resend", "github", "hmac")


def _segment(kind: str) -> Callable[[bytes, str], bytes]:
    def make(x: bytes, mid: str) -> bytes:
        return (
            b'{"type":"%s","event":"E","name":"N","userId":"u","groupId":"g","previousId":"p",'
            b'"messageId":"%s","properties":{"x":%s}}' % (kind.encode(), mid.encode(), x)
        )

    return make


def _batch(x: bytes, mid: str) -> bytes:
    bad = _segment("track")(x, mid)
    neighbour = _segment("track")(GOOD, f"{mid}-n")
    return b'{"batch":[%s,%s]}' % (bad, neighbour)


def _events_array(x: bytes, mid: str) -> bytes:
    return b"[%s,%s]" % (_segment("track")(x, mid), _segment("track")(GOOD, f"{mid}-n"))


def _collect(x: bytes, mid: str) -> bytes:
    return b'{"eventType":"click","visitorId":"v","messageId":"%s","x":%s}' % (mid.encode(), x)


def _metrics(x: bytes, mid: str) -> bytes:
    return (
        b'[{"source":"s","metric_name":"%s","metric_value":1,"metric_date":"2026-01-01",'
        b'"meta":{"x":%s}}]' % (mid.encode(), x)
    )


def _session_start(x: bytes, mid: str) -> bytes:
    return b'{"sessionId":"%s","metadata":{"x":%s}}' % (mid.encode(), x)


def _replay_events(x: bytes, mid: str) -> bytes:
    return b'{"batchId":"%s","events":[{"type":3,"timestamp":1,"x":%s}]}' % (mid.encode(), x)


def _legacy_replay(x: bytes, mid: str) -> bytes:
    return b'{"sessionId":"s1","batchId":"%s","events":[{"type":3,"x":%s}]}' % (mid.encode(), x)


def _webhook(x: bytes, mid: str) -> bytes:
    return b'{"type":"email.sent","id":"%s","x":%s}' % (mid.encode(), x)


EVENT_LIMIT = 32 * 1024
BATCH_LIMIT = 512 * 1024
ENDPOINTS = {
    **{
        f"segment_{kind}": Endpoint(
            f"/v1/{kind}", "write", "properties.", _segment(kind), EVENT_LIMIT, "raw.events"
        )
        for kind in ("track", "identify", "page", "screen", "group", "alias")
    },
    "segment_batch": Endpoint(
        "/v1/batch", "write", "properties.", _batch, BATCH_LIMIT, "raw.events", per_event=True
    ),
    "events_object": Endpoint(
        "/v1/events", "write", "properties.", _segment("track"), EVENT_LIMIT, "raw.events"
    ),
    "events_array": Endpoint(
        "/v1/events", "write", "properties.", _events_array, BATCH_LIMIT, "raw.events", True
    ),
    "collect": Endpoint("/collect", "write", "", _collect, EVENT_LIMIT, "raw.events"),
    "metrics": Endpoint(
        "/v1/metrics/ingest", "secret", "metrics[0].meta.", _metrics, 1024 * 1024, "raw.metrics"
    ),
    "session_start": Endpoint(
        "/v1/sessions/start", "write", "metadata.", _session_start, 64 * 1024, "raw.replay_sessions"
    ),
    "session_start_legacy": Endpoint(
        "/api/sessions/start",
        "write",
        "metadata.",
        _session_start,
        64 * 1024,
        "raw.replay_sessions",
    ),
    "replay_events": Endpoint(
        "/v1/sessions/s1/events",
        "write",
        "events[0].",
        _replay_events,
        5 * 1024 * 1024,
        "raw.replay_events",
    ),
    "replay_legacy": Endpoint(
        "/api/ingest", "write", "events[0].", _legacy_replay, 5 * 1024 * 1024, "raw.replay_events"
    ),
    "webhook_resend": Endpoint(
        "/v1/webhooks/resend", "resend", "", _webhook, 1024 * 1024, "raw.webhook_deliveries"
    ),
    "webhook_github": Endpoint(
        "/v1/webhooks/github", "github", "", _webhook, 1024 * 1024, "raw.webhook_deliveries"
    ),
    "webhook_generic": Endpoint(
        "/v1/webhooks/acme", "hmac", "", _webhook, 1024 * 1024, "raw.webhook_deliveries"
    ),
}


def _send(api: Ingest, endpoint: Endpoint, body: bytes, signed: bool = True) -> httpx.Response:
    headers = {"Content-Type": "application/json", **endpoint.headers(api, body, signed)}
    return httpx.post(f"{api.base}{endpoint.path}", content=body, headers=headers, timeout=60)


def _count(api: Ingest, endpoint: Endpoint) -> int:
    return int(api.scalar(f"SELECT count(*) FROM {endpoint.table}"))


def _problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) <= {"error", "message", "field"}
    assert body["error"]
    assert body["message"]
    return body


# --- the cases --------------------------------------------------------------------------------

BAD_VALUES = {
    "not_utf8": (NOT_UTF8, "UTF-8"),
    "too_deep": (DEEP, "deeper than"),
    "nul": (NUL, "NUL"),
    "number_overflow": (OVERFLOW, "out of range"),
}


def _check_bad_value(api: Ingest, endpoint: Endpoint, case: str) -> None:
    value, words = BAD_VALUES[case]
    mid = _id()
    before = _count(api, endpoint)
    body = endpoint.make(value, mid)
    answer = _send(api, endpoint, body)
    if endpoint.webhook:
        # Verified bytes are stored exactly; the parsed copy cannot be.
        assert answer.status_code == 200, answer.text
        stored = api.rows(
            "SELECT body, payload FROM raw.webhook_deliveries WHERE delivery_id = :id",
            id=answer.json()["id"],
        )
        assert [(bytes(r.body), r.payload) for r in stored] == [(body, None)]
        return
    if endpoint.per_event:
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert (result["accepted"], result["rejected"]) == (1, 1), result
        bad, neighbour = result["results"]
        assert (bad["index"], bad["status"]) == (0, "rejected")
        assert bad["field"].startswith(f"{endpoint.prefix}x"), bad
        assert words in bad["message"]
        assert (neighbour["status"], neighbour["messageId"]) == ("accepted", f"{mid}-n")
        stored = api.rows("SELECT message_id FROM raw.events WHERE message_id LIKE :m", m=f"{mid}%")
        assert [r.message_id for r in stored] == [f"{mid}-n"]
        return
    problem = _problem(answer, 400)
    assert problem["field"].startswith(f"{endpoint.prefix}x"), problem
    assert words in problem["message"], problem
    assert _count(api, endpoint) == before


def _check_request_level(api: Ingest, endpoint: Endpoint) -> None:
    good = endpoint.make(GOOD, _id())
    before = _count(api, endpoint)
    # No key (no signature): 401, nothing stored.
    assert _problem(_send(api, endpoint, good, signed=False), 401)["error"] == "unauthorized"
    # Malformed and empty bodies: 400 (webhooks: verified bytes, stored as they are).
    for body in (b'{"x": [1, 2', b""):
        answer = _send(api, endpoint, body)
        if endpoint.webhook:
            assert answer.status_code == 200, answer.text
        else:
            assert _problem(answer, 400)["error"] == "invalid"
    if endpoint.webhook:
        assert _count(api, endpoint) == before + 2
        before += 2
    # Nesting too deep to decode at all: 400 naming the body, for the whole request.
    answer = _send(api, endpoint, endpoint.make(UNDECODABLE, _id()))
    if endpoint.webhook:
        assert answer.status_code == 200, answer.text
        before += 1
    else:
        assert _problem(answer, 400)["field"] in ("body", f"{endpoint.prefix}x")
    # Oversized: 413, nothing stored.
    oversized = endpoint.make(b'"' + b"y" * endpoint.limit + b'"', _id())
    assert _problem(_send(api, endpoint, oversized), 413)["error"] == "too_large"
    assert _count(api, endpoint) == before
    # The same request twice: stored once.
    first, second = _send(api, endpoint, good), _send(api, endpoint, good)
    assert (first.status_code, second.status_code) == (200, 200), second.text
    # raw.metrics keeps every push; the newest per (source, name, date) wins downstream.
    stored = 2 if endpoint.per_event or endpoint.auth == "secret" else 1
    assert _count(api, endpoint) == before + stored
    if endpoint.auth != "secret":
        again = second.json()
        if endpoint.per_event:
            statuses = {r["status"] for r in again["results"]}
        else:
            statuses = {again.get("result") or again["status"]}  # /collect says `result`
        assert statuses == {"duplicate"}, again


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_bad_input_gets_a_clear_4xx_and_stores_nothing(api: Ingest, name: str) -> None:
    endpoint = ENDPOINTS[name]
    _check_request_level(api, endpoint)
    for case in BAD_VALUES:
        _check_bad_value(api, endpoint, case)


@pytest.mark.parametrize("name", ["segment_track", "segment_batch", "events_array", "collect"])
def test_event_time_overflow_is_refused_naming_the_field(api: Ingest, name: str) -> None:
    endpoint = ENDPOINTS[name]
    # An event whose skew correction leaves the datetime range (year 9999 sent in 2000).
    when = b'"9999-12-31T00:00:00Z","sentAt":"2000-01-01T00:00:00Z"'
    field = "timestamp" if name == "collect" else "originalTimestamp"
    if name == "collect":
        body = b'{"eventType":"click","visitorId":"v","timestamp":%s}' % when
    else:
        event = b'{"type":"track","event":"E","userId":"u","originalTimestamp":%s}' % when
        neighbour = _segment("track")(GOOD, "neighbour")
        body = {
            "segment_track": event,
            "segment_batch": b'{"batch":[%s,%s]}' % (event, neighbour),
            "events_array": b"[%s,%s]" % (event, neighbour),
        }[name]
    answer = _send(api, endpoint, body)
    if endpoint.per_event:
        assert answer.status_code == 200, answer.text
        assert [(r["status"], r.get("field")) for r in answer.json()["results"]] == [
            ("rejected", field),
            ("accepted", None),
        ]
    else:
        assert _problem(answer, 400)["field"] == field


def test_any_content_type_is_read_as_json(api: Ingest) -> None:
    endpoint = ENDPOINTS["segment_track"]
    for content_type in (
        "application/x-www-form-urlencoded",
        "text/plain;charset=UTF-8",
        "application/xml",
        None,
    ):
        body = endpoint.make(GOOD, _id())
        headers = endpoint.headers(api, body)
        if content_type is not None:
            headers["Content-Type"] = content_type
        answer = httpx.post(f"{api.base}/v1/track", content=body, headers=headers, timeout=30)
        assert answer.status_code == 200, (content_type, answer.text)
    assert _count(api, endpoint) == 4
    # An encoding that cannot be undone is still a 415.
    body = endpoint.make(GOOD, _id())
    answer = httpx.post(
        f"{api.base}/v1/track",
        content=body,
        headers={**endpoint.headers(api, body), "Content-Encoding": "br"},
        timeout=30,
    )
    assert _problem(answer, 415)["error"] == "unsupported_media_type"


def test_pixel_bad_input(api: Ingest) -> None:
    def pixel(query: str, key: bool = True) -> httpx.Response:
        auth = f"writeKey={api.write_key}&" if key else ""
        return httpx.get(f"{api.base}/collect?{auth}{query}", timeout=30)

    assert _problem(pixel("eventType=view&visitorId=v", key=False), 401)["error"] == "unauthorized"
    assert _problem(pixel("eventType=view&visitorId=v%00w"), 400)["field"] == "visitorId"
    assert _problem(pixel("eventType=view&visitorId=v&p=" + "y" * 40_000), 413)
    # Bytes that are not UTF-8 in a query are read as U+FFFD, as Litestar reads them.
    assert pixel("eventType=view&visitorId=v%FF&messageId=px1").status_code == 200
    assert pixel("eventType=view&visitorId=v%FF&messageId=px1").status_code == 200
    assert api.scalar("SELECT count(*) FROM raw.events") == 1


def test_every_body_too_deep_to_decode_is_a_400_on_every_operation(api: Ingest) -> None:
    # Not only the write endpoints: bodies Litestar decodes for a handler (digests,
    # deletion requests) hit msgspec's recursion limit the same way.
    document = api.get("/schema/openapi.json").json()
    answered: dict[str, int] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "requestBody" not in operation:
                continue
            schemes = {name for entry in operation.get("security", []) for name in entry}
            headers = {"Content-Type": "application/json"}
            if "secretKeyBearer" in schemes:
                headers |= api.bearer()
            elif schemes:
                headers |= {
                    "Authorization": "Basic "
                    + base64.b64encode(f"{api.write_key}:".encode()).decode()
                }
            concrete = path.replace("{", "").replace("}", "")  # a path id that names nothing
            answer = httpx.request(
                method.upper(), f"{api.base}{concrete}", content=UNDECODABLE, headers=headers
            )
            answered[f"{method} {path}"] = answer.status_code
            assert answer.status_code < 500, (method, path, answer.text)
            if schemes:
                assert answer.status_code in (400, 404), (method, path, answer.text)
                if answer.status_code == 400:
                    assert answer.json()["error"] == "invalid", (method, path, answer.text)
    assert list(answered.values()).count(400) >= 15, answered
