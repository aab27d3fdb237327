"""Reads with the secret key: each project sees its own rows only (enforced by RLS)."""

from __future__ import annotations

import httpx
from sqlalchemy import Engine

from lytics.settings import Settings
from tests.support.ingest import new_project, served_ingest


def test_recent_events_are_scoped_to_the_key_s_project(settings: Settings, engine: Engine) -> None:
    with served_ingest(settings, engine) as api:
        _, other_write, other_secret = new_project(engine, "other")
        api.post("/v1/track", json={"event": "Mine", "userId": "u", "messageId": "a"})
        api.post(
            "/v1/track",
            json={"event": "Theirs", "userId": "u", "messageId": "b"},
            auth=(other_write, ""),
        )
        mine = api.get("/v1/events/recent", headers=api.bearer()).json()
        theirs = api.get("/v1/events/recent", headers=api.bearer(other_secret)).json()
        assert [e["event"] for e in mine["events"]] == ["Mine"]
        assert [e["event"] for e in theirs["events"]] == ["Theirs"]
        assert mine["project"] == "site"


def test_reads_require_a_secret_key_and_bound_limits(settings: Settings, engine: Engine) -> None:
    with served_ingest(settings, engine) as api:
        assert api.get("/v1/events/recent").status_code == 401
        assert api.get("/v1/events/recent", headers=api.bearer(api.write_key)).status_code == 401
        for path in (
            "/v1/events/recent?limit=0",
            "/v1/events/recent?limit=101",
            "/v1/messages?limit=500",
            "/v1/messages?offset=-1",
        ):
            answer = api.get(path, headers=api.bearer())
            assert answer.status_code == 400, (path, answer.text)
            assert answer.json()["error"] == "invalid"
        for _ in range(3):
            api.post("/v1/track", json={"event": "E", "userId": "u"})
        assert len(api.get("/v1/events/recent?limit=2", headers=api.bearer()).json()["events"]) == 2


def test_empty_stats_for_a_new_project(settings: Settings, engine: Engine) -> None:
    with served_ingest(settings, engine) as api:
        stats = httpx.get(f"{api.base}/v1/stats", headers=api.bearer()).json()
    assert stats["total_messages"] == 0
    assert stats["top_senders"] == []


def test_tiles_before_the_first_build_and_for_other_projects(
    settings: Settings, engine: Engine
) -> None:
    with served_ingest(settings, engine) as api:
        fresh = api.get("/v1/dashboard/tiles?from=2026-01-01&to=2026-01-07", headers=api.bearer())
        assert fresh.status_code == 200
        body = fresh.json()
        assert body["built"] is False
        assert body["previous"] == {"from": "2025-12-25", "to": "2025-12-31"}
        assert {t["key"] for t in body["tiles"]} >= {"sessions", "pageviews", "unique_visitors"}
        other = api.get("/v1/dashboard/tiles?project=someone-else", headers=api.bearer())
        assert other.status_code == 403
        backwards = api.get(
            "/v1/dashboard/tiles?from=2026-02-01&to=2026-01-01", headers=api.bearer()
        )
        assert backwards.status_code == 400
        assert api.get("/v1/dashboard/tiles").status_code == 401
