"""Webhook intake over real HTTP against a real Postgres.

What must hold: an unsigned or mis-signed delivery is never stored; a signed
one is stored once per sender delivery id with its exact bytes and headers,
and answered 200 only after the commit; rotation works with two secrets; when
Postgres is gone the answer is 503 with Retry-After; the read API returns
what was stored.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import Engine, text

from lytics import api_keys
from lytics.crypto import Cipher
from lytics.projects import create_project
from lytics.settings import Settings
from lytics.webhook_secrets import CIPHER_PURPOSE, add_secret, remove_secret, set_secrets
from lytics_ingest_api.app import create_app
from lytics_ingest_api.fast_path import IngestApp
from lytics_ingest_api.webhooks.routes import SecretCache, secret_cache
from tests.support import TEST_SECRET
from tests.support.http import serve

RESEND_KEY = b"resend-signing-key-24byt"
RESEND_SECRET = "whsec_" + base64.b64encode(RESEND_KEY).decode()
GITHUB_SECRET = "gh-webhook-secret-0123456789"
ACME_SECRET = "acme-shared-secret-abcdef"
MiB = 1024 * 1024

# Odd spacing and key order on purpose: only these exact bytes carry the signature.
RESEND_BODY = (
    b'{ "type" : "email.bounced",\n  "created_at":"2026-01-05T10:00:00.000Z",'
    b'  "data": {"email_id":"4ef9a417","from":"Shop <news@shop.test>",'
    b'"to":["ann@example.com"],"subject":"Weekly digest"}}'
)


def svix_headers(
    body: bytes, msg_id: str, key: bytes = RESEND_KEY, ts: int | None = None
) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    digest = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(ts),
        "svix-signature": "v1," + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }


def hex_sig(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def resend_body(n: int, to: str = "ann@example.com", kind: str = "email.bounced") -> bytes:
    return json.dumps(
        {"type": kind, "data": {"email_id": f"e{n}", "from": "news@shop.test", "to": [to]}}
    ).encode()


def counted(provider: str, result: str) -> float:
    value = REGISTRY.get_sample_value(
        "lytics_webhooks_total", {"provider": provider, "result": result}
    )
    return value or 0.0


@dataclass
class Api:
    base: str
    app: IngestApp
    engine: Engine
    project_id: int
    read_key: str
    client: httpx.Client

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.client.post(path, content=body, headers=headers)

    def deliveries(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT project_id, provider, delivery_id, event_type, sender, headers,"
                        " body, payload FROM raw.webhook_deliveries ORDER BY id"
                    )
                )
            )

    def read(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(
            path, params=params, headers={"Authorization": f"Bearer {self.read_key}"}
        )


def cipher() -> Cipher:
    return Cipher(TEST_SECRET, CIPHER_PURPOSE)


def _project(engine: Engine, slug: str, sources: dict[str, list[str]]) -> tuple[int, str]:
    with engine.begin() as conn:
        project = create_project(conn, slug)
        for source, secrets in sources.items():
            set_secrets(conn, cipher(), project.id, source, secrets)
        key = api_keys.create_key(conn, project.id, "secret")
    return project.id, key.plaintext


@contextlib.contextmanager
def served(settings: Settings, engine: Engine) -> Iterator[Api]:
    project_id, read_key = _project(
        engine,
        "shop",
        {"resend": [RESEND_SECRET], "github": [GITHUB_SECRET], "acme": [ACME_SECRET]},
    )
    app = create_app(settings)
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield Api(base, app, engine, project_id, read_key, client)


@pytest.fixture
def api(settings: Settings, engine: Engine) -> Iterator[Api]:
    with served(settings, engine) as running:
        yield running


# --- storing a verified delivery ----------------------------------------------------------


def test_resend_delivery_is_stored_with_exact_bytes_and_headers(api: Api) -> None:
    before = counted("resend", "created")
    headers = {
        **svix_headers(RESEND_BODY, "msg_exact"),
        "Authorization": "Bearer not-for-storage",
        "Cookie": "session=abc",
        "X-API-Key": "lyw_not_for_storage",
        "User-Agent": "Svix-Webhooks/1.0",
    }
    answer = api.post("/v1/webhooks/resend", RESEND_BODY, headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "created", "id": "msg_exact"}
    [row] = api.deliveries()
    assert row.project_id == api.project_id
    assert (row.provider, row.delivery_id) == ("resend", "msg_exact")
    assert (row.event_type, row.sender) == ("email.bounced", "ann@example.com")
    assert bytes(row.body) == RESEND_BODY
    assert row.payload["data"]["subject"] == "Weekly digest"
    assert row.headers["svix-signature"] == headers["svix-signature"]
    assert row.headers["svix-id"] == "msg_exact"
    assert row.headers["user-agent"] == "Svix-Webhooks/1.0"
    assert not {"authorization", "cookie", "x-api-key"} & set(row.headers)
    assert counted("resend", "created") == before + 1


def test_reserialised_json_fails_the_signature_and_is_not_stored(api: Api) -> None:
    headers = svix_headers(RESEND_BODY, "msg_reser")
    reserialised = json.dumps(json.loads(RESEND_BODY)).encode()
    answer = api.post("/v1/webhooks/resend", reserialised, headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert "raw bytes" in answer.json()["message"]
    assert api.deliveries() == []


def test_repeated_delivery_id_is_a_duplicate_and_stores_nothing_new(api: Api) -> None:
    first = api.post("/v1/webhooks/resend", RESEND_BODY, svix_headers(RESEND_BODY, "msg_dup"))
    assert first.json()["status"] == "created"
    # Svix retries with the same id but a fresh timestamp and signature.
    retry_headers = svix_headers(RESEND_BODY, "msg_dup", ts=int(time.time()) + 2)
    retry = api.post("/v1/webhooks/resend", RESEND_BODY, retry_headers)
    assert retry.status_code == 200
    assert retry.json() == {"status": "duplicate", "id": "msg_dup"}
    rows = api.deliveries()
    assert len(rows) == 1
    assert rows[0].headers["svix-signature"] != retry_headers["svix-signature"]


def test_same_delivery_replayed_ten_times_concurrently_is_stored_once(api: Api) -> None:
    headers = svix_headers(RESEND_BODY, "msg_replay")

    def send(_: int) -> httpx.Response:
        return httpx.post(
            f"{api.base}/v1/webhooks/resend", content=RESEND_BODY, headers=headers, timeout=30
        )

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(send, range(10)))
    assert [a.status_code for a in answers] == [200] * 10
    statuses = sorted(a.json()["status"] for a in answers)
    assert statuses == ["created"] + ["duplicate"] * 9
    assert len(api.deliveries()) == 1


def test_gzip_body_is_verified_and_stored_decompressed(api: Api) -> None:
    headers = {**svix_headers(RESEND_BODY, "msg_gzip"), "Content-Encoding": "gzip"}
    answer = api.post("/v1/webhooks/resend", gzip.compress(RESEND_BODY), headers)
    assert answer.status_code == 200, answer.text
    [row] = api.deliveries()
    assert bytes(row.body) == RESEND_BODY


def test_github_delivery_is_stored(api: Api) -> None:
    body = json.dumps({"action": "created", "sender": {"login": "octocat"}}).encode()
    headers = {
        "X-Hub-Signature-256": "sha256=" + hex_sig(GITHUB_SECRET, body),
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-GitHub-Event": "star",
        "Content-Type": "application/json",
    }
    answer = api.post("/v1/webhooks/github", body, headers)
    assert answer.json() == {"status": "created", "id": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    [row] = api.deliveries()
    assert (row.provider, row.event_type, row.sender) == ("github", "star", "octocat")
    assert row.payload == {"action": "created", "sender": {"login": "octocat"}}


def test_github_form_encoded_delivery_keeps_bytes_and_parses_payload(api: Api) -> None:
    inner = {"zen": "Keep it logically awesome.", "sender": {"login": "hubot"}}
    body = ("payload=" + quote(json.dumps(inner))).encode()
    headers = {
        "X-Hub-Signature-256": "sha256=" + hex_sig(GITHUB_SECRET, body),
        "X-GitHub-Delivery": "d-form",
        "X-GitHub-Event": "ping",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    assert api.post("/v1/webhooks/github", body, headers).status_code == 200
    [row] = api.deliveries()
    assert (bytes(row.body), row.payload, row.sender) == (body, inner, "hubot")


def test_github_path_uses_github_scheme_not_the_generic_one(api: Api) -> None:
    """`/v1/webhooks/github` is never the generic route: an X-Signature does not count there."""
    body = b'{"zen":"x"}'
    answer = api.post("/v1/webhooks/github", body, {"X-Signature": hex_sig(GITHUB_SECRET, body)})
    assert answer.status_code == 401
    assert "X-Hub-Signature-256" in answer.json()["message"]
    assert api.deliveries() == []


def test_generic_sender_delivery_ids_event_type_and_sender(api: Api) -> None:
    def send(body: bytes, **extra: str) -> httpx.Response:
        headers = {"X-Signature": "sha256=" + hex_sig(ACME_SECRET, body), **extra}
        return api.post("/v1/webhooks/acme", body, headers)

    by_header = send(b'{"event":"order.paid","from":"bob@acme.test"}', **{"X-Delivery-Id": "d1"})
    by_body = send(b'{"message_id":"m-7","type":"order.refunded"}', **{"X-Event-Type": "refund"})
    not_json = b"plain text ping"
    by_hash = send(not_json)
    assert [a.json()["id"] for a in (by_header, by_body, by_hash)] == [
        "d1",
        "m-7",
        "sha256:" + hashlib.sha256(not_json).hexdigest(),
    ]
    rows = api.deliveries()
    assert [(r.provider, r.event_type, r.sender) for r in rows] == [
        ("acme", "order.paid", "bob@acme.test"),
        ("acme", "refund", None),
        ("acme", None, None),
    ]
    assert rows[2].payload is None
    assert bytes(rows[2].body) == not_json
    # The same bytes again, with no id from the sender, are the same delivery.
    assert send(not_json).json()["status"] == "duplicate"
    assert len(api.deliveries()) == 3


# --- refusing what is not verified -------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unsigned", "missing_signature"),
        ("wrong_secret", "invalid_signature"),
        ("tampered", "invalid_signature"),
        ("stale", "stale_timestamp"),
        ("future", "stale_timestamp"),
        ("malformed", "malformed_signature"),
    ],
)
def test_unverified_resend_deliveries_are_401_and_never_stored(
    api: Api, case: str, reason: str
) -> None:
    body, now = RESEND_BODY, int(time.time())
    headers = {
        "unsigned": {"content-type": "application/json"},
        "wrong_secret": svix_headers(body, "m1", key=b"x" * 24),
        "tampered": svix_headers(body.replace(b"ann@", b"eve@"), "m1"),
        "stale": svix_headers(body, "m1", ts=now - 360),
        "future": svix_headers(body, "m1", ts=now + 360),
        "malformed": {**svix_headers(body, "m1"), "svix-signature": "v1,%%%"},
    }[case]
    before = counted("resend", reason)
    answer = api.post("/v1/webhooks/resend", body, headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert answer.json()["message"]
    assert api.deliveries() == []
    assert counted("resend", reason) == before + 1


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/webhooks/github", {"X-Hub-Signature-256": "sha256=" + "0" * 64}),
        ("/v1/webhooks/github", {"X-Hub-Signature-256": "sha1=" + "0" * 40}),
        ("/v1/webhooks/github", {}),
        ("/v1/webhooks/acme", {"X-Signature": "0" * 64}),
        ("/v1/webhooks/acme", {}),
    ],
)
def test_unverified_github_and_generic_deliveries_are_401(
    api: Api, path: str, headers: dict[str, str]
) -> None:
    answer = api.post(path, b'{"id":"x"}', headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert api.deliveries() == []


def test_source_without_secret_is_401_even_when_signed(api: Api) -> None:
    body = b'{"id":"evt_1"}'
    headers = {"X-Signature": hex_sig("anything", body)}
    answer = api.post("/v1/webhooks/stripe?project=shop", body, headers)
    assert answer.status_code == 401
    assert "no signing secret" in answer.json()["message"]
    unsigned = api.post("/v1/webhooks/stripe?project=shop", body, {})
    assert unsigned.status_code == 401
    assert api.deliveries() == []


def test_unknown_or_ambiguous_project_is_refused(api: Api) -> None:
    body = RESEND_BODY
    unknown = api.post("/v1/webhooks/resend?project=nope", body, svix_headers(body, "m"))
    assert (unknown.status_code, unknown.json()["field"]) == (404, "project")
    # No project has this source at all.
    nobody = api.post("/v1/webhooks/nobody", b"{}", {"X-Signature": hex_sig("k", b"{}")})
    assert (nobody.status_code, nobody.json()["field"]) == (400, "project")
    bad_name = api.post("/v1/webhooks/Not_Valid!", b"{}", {})
    assert (bad_name.status_code, bad_name.json()["field"]) == (400, "source")
    assert api.deliveries() == []


def test_project_is_chosen_by_query_and_required_when_ambiguous(
    api: Api, settings: Settings
) -> None:
    other_secret = "whsec_" + base64.b64encode(b"other-project-signing-k!").decode()
    other_id, _ = _project(api.engine, "blog", {"resend": [other_secret]})
    secret_cache(api.app.state).forget()
    ambiguous = api.post("/v1/webhooks/resend", RESEND_BODY, svix_headers(RESEND_BODY, "m1"))
    assert ambiguous.status_code == 400
    assert ambiguous.json()["field"] == "project"
    assert "project" in ambiguous.json()["message"]
    # Each project verifies with its own secret only.
    other_key = b"other-project-signing-k!"
    wrong = api.post(
        "/v1/webhooks/resend?project=blog", RESEND_BODY, svix_headers(RESEND_BODY, "m1")
    )
    assert wrong.status_code == 401
    right = api.post(
        "/v1/webhooks/resend?project=blog",
        RESEND_BODY,
        svix_headers(RESEND_BODY, "m1", key=other_key),
    )
    assert right.status_code == 200
    assert [(r.project_id, r.delivery_id) for r in api.deliveries()] == [(other_id, "m1")]


def test_oversized_body_is_413_and_not_stored(api: Api) -> None:
    big = b'{"pad":"' + b"x" * MiB + b'"}'
    answer = api.post("/v1/webhooks/acme", big, {"X-Signature": hex_sig(ACME_SECRET, big)})
    assert answer.status_code == 413
    # A small gzip body that inflates beyond the limit is refused the same way.
    bomb = b'{"pad":"' + b"0" * (2 * MiB) + b'"}'
    headers = {"X-Signature": hex_sig(ACME_SECRET, bomb), "Content-Encoding": "gzip"}
    assert api.post("/v1/webhooks/acme", gzip.compress(bomb), headers).status_code == 413
    assert api.deliveries() == []
    # Just under the limit is fine.
    fits = b'{"pad":"' + b"x" * (MiB - 100) + b'"}'
    fitting = api.post("/v1/webhooks/acme", fits, {"X-Signature": hex_sig(ACME_SECRET, fits)})
    assert fitting.json()["status"] == "created"


# --- rotation and the secret cache --------------------------------------------------------


def test_rotation_old_and_new_valid_then_old_rejected_after_removal(
    settings: Settings, engine: Engine
) -> None:
    """Both secrets verify during rotation; after removal the old one fails within the TTL."""
    quick = settings.model_copy(update={"key_cache_seconds": 0.3})
    with served(quick, engine) as api:
        assert secret_cache(api.app.state).ttl == 0.3

        def send(msg_id: str, key: bytes) -> int:
            body = resend_body(len(msg_id), kind=msg_id)
            return api.post(
                "/v1/webhooks/resend", body, svix_headers(body, msg_id, key)
            ).status_code

        new_key = b"rotated-signing-key-24by"
        new_secret = "whsec_" + base64.b64encode(new_key).decode()
        assert send("r0", RESEND_KEY) == 200  # the cache now holds the old secret alone
        with engine.begin() as conn:
            assert add_secret(conn, cipher(), api.project_id, "resend", new_secret) == 2
        time.sleep(0.4)
        assert (send("r1", RESEND_KEY), send("r2", new_key)) == (200, 200)
        with engine.begin() as conn:
            assert remove_secret(conn, cipher(), api.project_id, "resend", RESEND_SECRET[:12]) == 1
        time.sleep(0.4)
        assert (send("r3", RESEND_KEY), send("r3", new_key)) == (401, 200)
        assert [r.delivery_id for r in api.deliveries()] == ["r0", "r1", "r2", "r3"]


def test_secret_cache_is_short_and_clearable(api: Api, settings: Settings) -> None:
    assert SecretCache(settings).ttl == 5.0  # LYTICS_KEY_CACHE_SECONDS (30) is longer
    assert SecretCache(settings.model_copy(update={"key_cache_seconds": 0})).ttl == 0
    body = resend_body(1)
    assert api.post("/v1/webhooks/resend", body, svix_headers(body, "c1")).status_code == 200
    with api.engine.begin() as conn:
        set_secrets(conn, cipher(), api.project_id, "resend", [])
    # Cached for up to the TTL; forgetting makes the removal immediate.
    secret_cache(api.app.state).forget()
    body = resend_body(2)
    answer = api.post("/v1/webhooks/resend", body, svix_headers(body, "c2"))
    assert answer.status_code == 400  # no project has a resend secret any more
    assert len(api.deliveries()) == 1


def test_secrets_unreadable_with_this_secret_key_are_500_never_accepted(
    settings: Settings, engine: Engine
) -> None:
    """A changed LYTICS_SECRET_KEY is the operator's problem: a loud, retryable 500, no row."""
    rekeyed = settings.model_copy(update={"secret_key": SecretStr("not-the-key-used-to-store")})
    with served(rekeyed, engine) as api:
        answer = api.post("/v1/webhooks/resend", RESEND_BODY, svix_headers(RESEND_BODY, "k1"))
        assert answer.status_code == 500
        assert answer.json()["error"] == "misconfigured"
        assert api.deliveries() == []


# --- Postgres unavailable ----------------------------------------------------------------


def test_postgres_unreachable_is_503_with_retry_after(tmp_path: Path) -> None:
    """Secrets come from the database too, so a down database is 503, never 401 or 2xx."""
    dead = Settings(
        database_url=f"postgresql://postgres@/postgres?host={tmp_path}",
        secret_key=TEST_SECRET,
        environment="test",
    )
    before = counted("resend", "unavailable")
    with serve(create_app(dead)) as base:
        answer = httpx.post(
            f"{base}/v1/webhooks/resend?project=shop",
            content=RESEND_BODY,
            headers=svix_headers(RESEND_BODY, "m-down"),
            timeout=30,
        )
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.json()["error"] == "unavailable"
    assert counted("resend", "unavailable") == before + 1


# --- the read API over stored deliveries -------------------------------------------------


def test_messages_and_stats_return_stored_deliveries_with_filters(api: Api) -> None:
    sent = [
        ("m1", resend_body(1, to="ann@example.com", kind="email.delivered")),
        ("m2", resend_body(2, to="ann@example.com", kind="email.bounced")),
        ("m3", resend_body(3, to="bob@example.com", kind="email.opened")),
    ]
    for msg_id, body in sent:
        assert api.post("/v1/webhooks/resend", body, svix_headers(body, msg_id)).status_code == 200
    gh = json.dumps({"sender": {"login": "octocat"}, "zen": "Half measures"}).encode()
    gh_headers = {
        "X-Hub-Signature-256": "sha256=" + hex_sig(GITHUB_SECRET, gh),
        "X-GitHub-Delivery": "g1",
        "X-GitHub-Event": "star",
    }
    assert api.post("/v1/webhooks/github", gh, gh_headers).status_code == 200

    everything = api.read("/v1/messages")
    assert everything.status_code == 200, everything.text
    assert [m["delivery_id"] for m in everything.json()["data"]] == ["g1", "m3", "m2", "m1"]
    resend_only = api.read("/v1/messages", source="resend").json()["data"]
    assert {m["source"] for m in resend_only} == {"resend"}
    assert len(resend_only) == 3
    from_ann = api.read("/v1/messages", **{"from": "ann@example.com"}).json()["data"]
    assert [m["delivery_id"] for m in from_ann] == ["m2", "m1"]
    searched = api.read("/v1/messages", q="bounced").json()["data"]
    assert [m["delivery_id"] for m in searched] == ["m2"]
    assert api.read("/v1/messages", q="Half measures").json()["data"][0]["sender"] == "octocat"
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert api.read("/v1/messages", since=future).json()["data"] == []
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert len(api.read("/v1/messages", since=past).json()["data"]) == 4
    assert len(api.read("/v1/messages", limit=1).json()["data"]) == 1
    assert len(api.read("/v1/messages", limit=100).json()["data"]) == 4
    for bad in (0, 101, -1):
        assert api.read("/v1/messages", limit=bad).status_code == 400

    stats = api.read("/v1/stats")
    assert stats.status_code == 200
    body = stats.json()
    assert body["total_messages"] == 4
    assert body["unique_senders"] == 3
    assert body["top_senders"][0] == {"sender": "ann@example.com", "messages": 2}
    assert {s["source"]: s["messages"] for s in body["by_source"]} == {"resend": 3, "github": 1}


def test_openapi_documents_the_webhook_endpoints_and_headers(api: Api) -> None:
    doc = api.client.get("/schema/openapi.json").json()
    paths = doc["paths"]
    assert {"/v1/webhooks/resend", "/v1/webhooks/github", "/v1/webhooks/{source}"} <= set(paths)
    assert "svix-signature" in paths["/v1/webhooks/resend"]["post"]["description"]
    assert "X-Hub-Signature-256" in paths["/v1/webhooks/github"]["post"]["description"]
    assert "X-Signature" in paths["/v1/webhooks/{source}"]["post"]["description"]
    assert "requestBody" in paths["/v1/webhooks/resend"]["post"]
