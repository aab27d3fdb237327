"""The event writer's two paths into raw.events, and what each must keep true.

direct: one binary COPY per batch, for a role that row-level security does not
apply to (the ingest role, given BYPASSRLS by migration 0007). staged: COPY into a
temporary table, then INSERT ... ON CONFLICT, for a batch that holds a duplicate
and for a login without BYPASSRLS (e.g. a pgbouncer login that is a member of
lytics_ingest). On both: every acknowledged event is stored exactly once, a
retried event is answered `duplicate`, and the stored payload is the event sent.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from lytics.settings import Settings
from lytics.warehouse.urls import libpq_dsn
from lytics_ingest_api.app import create_app
from tests.support.http import serve
from tests.support.ingest import Ingest, new_project


def _batch(*ids: str, **props: Any) -> dict[str, Any]:
    return {
        "batch": [
            {
                "type": "track",
                "event": "Bought",
                "userId": "u1",
                "messageId": m,
                "properties": props,
            }
            for m in ids
        ]
    }


def _statuses(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [r["status"] for r in answer.json()["results"]]


def _flushes(base: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    found = re.findall(r'^lytics_writer_flushes_total\{path="(\w+)"\} (\S+)$', text, re.M)
    return {path: float(value) for path, value in found}


@contextlib.contextmanager
def _served(settings: Settings, engine: Engine) -> Iterator[tuple[Ingest, Any]]:
    project_id, write, secret = new_project(engine, "site")
    app = create_app(settings)
    with serve(app) as base:
        yield Ingest(base, engine, project_id, write, secret), app.state.writer


def _stored(api: Ingest) -> dict[str, int]:
    rows = api.rows("SELECT message_id, count(*) FROM raw.events GROUP BY 1")
    return {m: c for m, c in rows}


def test_new_events_take_one_copy_and_retries_fall_back_to_the_staging_path(
    settings: Settings, engine: Engine
) -> None:
    with _served(settings, engine) as (api, writer):
        before = _flushes(api.base)
        assert _statuses(api.post("/v1/batch", json=_batch("a", "b", "c"))) == ["accepted"] * 3
        after_new = _flushes(api.base)
        assert writer.direct
        assert after_new.get("direct", 0) - before.get("direct", 0) == 1

        # One retried event fails the whole COPY; the batch is redone staged, and only
        # the retried event is a duplicate.
        answer = api.post("/v1/batch", json=_batch("c", "d", "d"))
        assert _statuses(answer) == ["duplicate", "accepted", "duplicate"]
        after_retry = _flushes(api.base)
        assert after_retry["duplicate_fallback"] - after_new.get("duplicate_fallback", 0) == 1
        assert after_retry["staged"] - after_new.get("staged", 0) == 1
        assert writer.direct  # a duplicate is no reason to give up the direct path

        assert _stored(api) == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_direct_copy_stores_the_event_as_sent(settings: Settings, engine: Engine) -> None:
    event = {
        "type": "page",
        "name": "Pricing",
        "anonymousId": "anon-1",
        "messageId": "p1",
        "timestamp": "2026-12-01T10:00:00.000Z",
        "sentAt": "2026-12-01T10:00:05.000Z",
        "properties": {"nested": {"unicode": "naïve ☃", "quote": 'say "hi"', "n": [1, 2.5]}},
        "context": {"page": {"url": "https://x.example/p?q=1", "path": "/p"}},
    }
    with _served(settings, engine) as (api, writer):
        assert _statuses(api.post("/v1/batch", json={"batch": [event]})) == ["accepted"]
        assert writer.direct
        (row,) = api.rows(
            "SELECT payload, type, event, path, url, original_timestamp, sent_at, "
            "timestamp_clamped FROM raw.events WHERE message_id = 'p1'"
        )
    assert row.payload == event  # jsonb: the same document, whatever the key order
    assert (row.type, row.event, row.path) == ("page", "Pricing", "/p")
    assert row.url == "https://x.example/p?q=1"
    assert row.original_timestamp.isoformat() == "2026-12-01T10:00:00+00:00"
    assert row.sent_at.isoformat() == "2026-12-01T10:00:05+00:00"
    assert row.timestamp_clamped is False


@pytest.fixture
def login_without_bypassrls(database_url: str) -> Iterator[str]:
    """A login that is a member of lytics_ingest, as an operator would give pgbouncer.

    BYPASSRLS is not inherited through membership, so row-level security applies to it
    and Postgres refuses it COPY into raw tables.
    """
    name = f"ingest_login_{secrets.token_hex(4)}"
    with psycopg.connect(libpq_dsn(database_url), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {name} LOGIN IN ROLE lytics_ingest")
    try:
        yield name
    finally:
        with psycopg.connect(libpq_dsn(database_url), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (name,),
            )
            admin.execute(f"DROP ROLE {name}")


def test_a_login_under_row_level_security_uses_the_staging_path_and_loses_nothing(
    settings: Settings, engine: Engine, database_url: str, login_without_bypassrls: str
) -> None:
    url = re.sub(
        r"^(postgresql(?:\+\w+)?://)[^@/]*@", rf"\1{login_without_bypassrls}@", database_url
    )
    assert login_without_bypassrls in url
    restricted = settings.model_copy(update={"ingest_database_url": SecretStr(url)})
    with _served(restricted, engine) as (api, writer):
        assert _statuses(api.post("/v1/batch", json=_batch("a", "b", n=1))) == ["accepted"] * 2
        assert not writer.direct  # told once by Postgres, not guessed
        assert _statuses(api.post("/v1/batch", json=_batch("b", "c", n=2))) == [
            "duplicate",
            "accepted",
        ]
        flushes = _flushes(api.base)
        assert flushes.get("staged", 0) >= 2
        payload = api.rows("SELECT payload FROM raw.events WHERE message_id = 'b'")[0].payload
        assert payload["properties"] == {"n": 1}  # the first delivery, not the retry
        assert _stored(api) == {"a": 1, "b": 1, "c": 1}
        with (
            psycopg.connect(libpq_dsn(url), autocommit=True) as conn,
            pytest.raises(psycopg.errors.FeatureNotSupported),
            conn.cursor().copy("COPY raw.events (project_id) FROM STDIN"),
        ):
            pass
        assert json.loads(api.get("/health/ready").text)["writer"] == "ok"


def test_a_duplicate_met_early_in_a_large_copy_still_falls_back_cleanly(
    settings: Settings, engine: Engine
) -> None:
    # Postgres reports the unique violation while the client is still streaming rows;
    # the connection must come back usable and the batch be redone staged.
    with _served(settings, engine) as (api, writer):
        assert _statuses(api.post("/v1/batch", json=_batch("x0"))) == ["accepted"]
        ids = [f"x{i}" for i in range(450)]
        statuses = _statuses(api.post("/v1/batch", json=_batch(*ids, pad="p" * 300)))
        assert statuses == ["duplicate"] + ["accepted"] * 449
        assert writer.direct
        assert _statuses(api.post("/v1/batch", json=_batch("y1", "y2"))) == ["accepted"] * 2
        stored = _stored(api)
    assert len(stored) == 452
    assert set(stored.values()) == {1}
