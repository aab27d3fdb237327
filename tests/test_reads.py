"""Reads with the secret key: each project sees its own rows only (enforced by RLS), lists
page with a cursor, search and stats are exact, and a slow read is cancelled, not endured."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from lytics.settings import Settings
from lytics.warehouse import migrate
from lytics.warehouse.urls import libpq_dsn
from lytics_ingest_api.routes import reads
from tests.support.ingest import Ingest, new_project, served_ingest

AT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _deliveries(engine: Engine, project_id: int, rows: list[dict[str, Any]]) -> None:
    """Store deliveries as the webhook endpoints do (one INSERT), with chosen arrival times."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id,"
                " event_type, sender, headers, body, payload, received_at)"
                " VALUES (:project, :provider, :delivery_id, NULL, :sender, '{}', '\\x',"
                " CAST(:payload AS jsonb), :received_at)"
            ),
            [
                {
                    "project": project_id,
                    "provider": row.get("provider", "resend"),
                    "delivery_id": row["delivery_id"],
                    "sender": row.get("sender"),
                    "payload": json.dumps(row.get("payload", {})),
                    "received_at": row.get("received_at", AT),
                }
                for row in rows
            ],
        )


def _events(engine: Engine, project_id: int, count: int, *, ties: int) -> None:
    """`count` events, `ties` of them sharing each received_at."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.events (project_id, message_id, type, event, timestamp,"
                " received_at, source, payload)"
                " SELECT :project, 'm' || g, 'track', 'E' || g, :at, :at + (g / :ties) *"
                " interval '1 second', 'native', '{}' FROM generate_series(1, :count) g"
            ),
            {"project": project_id, "at": AT, "ties": ties, "count": count},
        )


def _pages(api: Ingest, path: str, key: str, limit: int) -> Iterator[dict[str, Any]]:
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        answer = api.get(path, params=params, headers=api.bearer())
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body[key]) <= limit
        yield body
        cursor = body["next_cursor"]
        if cursor is None:
            return


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
        assert mine["next_cursor"] is None


def test_reads_require_a_secret_key_and_bound_limits(settings: Settings, engine: Engine) -> None:
    with served_ingest(settings, engine) as api:
        assert api.get("/v1/events/recent").status_code == 401
        assert api.get("/v1/events/recent", headers=api.bearer(api.write_key)).status_code == 401
        for path, field in (
            ("/v1/events/recent?limit=0", "limit"),
            ("/v1/events/recent?limit=101", "limit"),
            ("/v1/messages?limit=500", "limit"),
            # Offset paging is gone: ignoring it would serve an old client page one forever.
            ("/v1/messages?offset=50", "offset"),
            ("/v1/messages?cursor=bm90LWEtY3Vyc29y", "cursor"),
            ("/v1/messages?cursor=%%%", "cursor"),
            # A time without its zone; an id beyond bigint.
            ("/v1/events/recent?cursor=WyIyMDI2LTExLTMwVDEyOjAwOjAwIiwxXQ", "cursor"),
            (
                "/v1/events/recent?cursor=WyIyMDI2LTExLTMwVDEyOjAwOjAwWiIsOTk5OTk5OTk5OTk5OTk5OTk5OTld",
                "cursor",
            ),
        ):
            answer = api.get(path, headers=api.bearer())
            assert answer.status_code == 400, (path, answer.text)
            assert answer.json()["error"] == "invalid"
            assert answer.json()["field"] == field, (path, answer.text)
        for _ in range(3):
            api.post("/v1/track", json={"event": "E", "userId": "u"})
        assert len(api.get("/v1/events/recent?limit=2", headers=api.bearer()).json()["events"]) == 2


def test_a_nul_in_a_text_parameter_is_a_400_naming_it(settings: Settings, engine: Engine) -> None:
    with served_ingest(settings, engine) as api:
        for name, field in (("q", "q"), ("source", "source"), ("from", "from")):
            answer = api.get("/v1/messages", params={name: "a\x00b"}, headers=api.bearer())
            assert answer.status_code == 400, (name, answer.text)
            assert answer.json()["field"] == field


def test_cursor_pages_hold_every_row_once_despite_ties(settings: Settings, engine: Engine) -> None:
    with served_ingest(settings, engine) as api:
        _events(engine, api.project_id, 23, ties=4)
        events = [
            e for body in _pages(api, "/v1/events/recent", "events", 5) for e in body["events"]
        ]
        expected = [
            row[0]
            for row in api.rows(
                "SELECT message_id FROM raw.events WHERE project_id = :p"
                " ORDER BY received_at DESC, id DESC",
                p=api.project_id,
            )
        ]
        assert [e["message_id"] for e in events] == expected
        assert len(set(expected)) == 23

        # Deliveries: seven share one instant, the rest another.
        _deliveries(
            engine,
            api.project_id,
            [
                {"delivery_id": f"d{n}", "received_at": AT + timedelta(seconds=n // 7)}
                for n in range(12)
            ],
        )
        pages = _pages(api, "/v1/messages", "data", 5)
        first = next(pages)
        # A delivery that arrives while the client pages does not shift the pages it has
        # not read yet: it is newer than the cursor.
        newest = AT + timedelta(hours=1)
        _deliveries(engine, api.project_id, [{"delivery_id": "late", "received_at": newest}])
        seen = [m["delivery_id"] for body in (first, *pages) for m in body["data"]]
        ordered = [
            row[0]
            for row in api.rows(
                "SELECT delivery_id FROM raw.webhook_deliveries WHERE delivery_id <> 'late'"
                " ORDER BY received_at DESC, id DESC"
            )
        ]
        assert seen == ordered
        assert sorted(seen) == sorted(f"d{n}" for n in range(12))


def test_filters_and_cursor_together(settings: Settings, engine: Engine) -> None:
    with served_ingest(settings, engine) as api:
        _deliveries(
            engine,
            api.project_id,
            [
                {
                    "delivery_id": f"d{n}",
                    "provider": "github" if n % 3 == 0 else "resend",
                    "sender": f"s{n % 2}",
                    "received_at": AT + timedelta(minutes=n // 2),
                }
                for n in range(30)
            ],
        )
        seen: list[str] = []
        cursor = None
        while True:
            params = {"source": "resend", "from": "s1", "limit": 3, "since": AT.isoformat()}
            body = api.get(
                "/v1/messages",
                params={**params, **({"cursor": cursor} if cursor else {})},
                headers=api.bearer(),
            ).json()
            seen += [m["delivery_id"] for m in body["data"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        wanted = [f"d{n}" for n in reversed(range(30)) if n % 3 != 0 and n % 2 == 1]
        assert seen == wanted


PAYLOADS = {
    "bounce": {"type": "email.bounced", "data": {"to": ["Ann@Example.com"], "subject": "Hi"}},
    "zen": {"sender": {"login": "octocat"}, "zen": "Half measures are as bad as nothing"},
    "numbers": {"order": 123456, "note": "line1\nline2"},
    "keys": {"bounced": True, "measures": None},
}


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("bounced", {"bounce"}),  # a word of "email.bounced"
        ("BOUNCED", {"bounce"}),  # without case
        ("email bounced", {"bounce"}),
        ("ann@example.com", {"bounce"}),  # the address as consecutive words
        ("bounce", set()),  # whole words: no prefix or substring
        ("half measures", {"zen"}),
        ("measures half", set()),  # in this order
        ("half bad", set()),  # consecutive
        ("123456", {"numbers"}),  # numbers are values too
        ("line2", {"numbers"}),  # an escaped newline separates words
        ("measures", {"zen"}),  # keys are not searched (the "keys" payload has one)
        ("octocat", {"zen"}),
    ],
)
def test_search_finds_the_words_of_the_payload_values(
    settings: Settings, engine: Engine, q: str, found: set[str]
) -> None:
    with served_ingest(settings, engine) as api:
        _deliveries(
            engine,
            api.project_id,
            [{"delivery_id": name, "payload": payload} for name, payload in PAYLOADS.items()],
        )
        answer = api.get("/v1/messages", params={"q": q}, headers=api.bearer())
        assert answer.status_code == 200, answer.text
        assert {m["delivery_id"] for m in answer.json()["data"]} == found


def test_search_sees_only_the_key_s_project_and_pages(settings: Settings, engine: Engine) -> None:
    with served_ingest(settings, engine) as api:
        other_id, _, other_secret = new_project(engine, "other")
        hit = {"data": {"subject": "Invoice ready"}}
        _deliveries(
            engine,
            api.project_id,
            [
                {
                    "delivery_id": f"mine{n}",
                    "payload": hit,
                    "received_at": AT + timedelta(seconds=n // 2),
                }
                for n in range(7)
            ]
            + [{"delivery_id": "miss", "payload": {"data": {"subject": "Receipt"}}}],
        )
        _deliveries(engine, other_id, [{"delivery_id": "theirs", "payload": hit}])
        seen = [
            m["delivery_id"]
            for body in _pages_with(api, {"q": "invoice"}, limit=3)
            for m in body["data"]
        ]
        assert seen == [f"mine{n}" for n in (6, 5, 4, 3, 2, 1, 0)]
        theirs = api.get("/v1/messages?q=invoice", headers=api.bearer(other_secret)).json()
        assert [m["delivery_id"] for m in theirs["data"]] == ["theirs"]
        assert api.get("/v1/messages?q=...", headers=api.bearer()).json()["field"] == "q"

    # The search function applies the reader's scope itself: unscoped, it finds nothing.
    with psycopg.connect(libpq_dsn(settings.require_database_url())) as conn:
        conn.execute("SET ROLE lytics_reader")
        rows = conn.execute(
            "SELECT * FROM raw.search_webhook_deliveries(raw.webhook_search_query('invoice'),"
            " NULL, NULL, NULL, NULL, NULL, 100)"
        ).fetchall()
        assert rows == []


def _pages_with(api: Ingest, params: dict[str, Any], limit: int) -> Iterator[dict[str, Any]]:
    cursor = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        answer = api.get("/v1/messages", params=query, headers=api.bearer())
        assert answer.status_code == 200, answer.text
        yield answer.json()
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return


def _stats_from_raw(api: Ingest, project_id: int) -> dict[str, Any]:
    total, senders = api.rows(
        "SELECT count(*), count(DISTINCT sender) FROM raw.webhook_deliveries WHERE project_id = :p",
        p=project_id,
    )[0]
    by_source = {
        row[0]: row[1]
        for row in api.rows(
            "SELECT provider, count(*) FROM raw.webhook_deliveries WHERE project_id = :p"
            " GROUP BY 1",
            p=project_id,
        )
    }
    top = [
        {"sender": row[0], "messages": row[1]}
        for row in api.rows(
            "SELECT sender, count(*) FROM raw.webhook_deliveries WHERE project_id = :p"
            " AND sender IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10",
            p=project_id,
        )
    ]
    return {"total": total, "senders": senders, "by_source": by_source, "top": top}


def _stats(api: Ingest, key: str | None = None) -> dict[str, Any]:
    body = api.get("/v1/stats", headers=api.bearer(key)).json()
    return {
        "total": body["total_messages"],
        "senders": body["unique_senders"],
        "by_source": {s["source"]: s["messages"] for s in body["by_source"]},
        "top": body["top_senders"],
    }


def test_stats_are_exact_through_inserts_deletes_and_truncate(
    settings: Settings, engine: Engine
) -> None:
    with served_ingest(settings, engine) as api:
        assert _stats(api) == {"total": 0, "senders": 0, "by_source": {}, "top": []}
        other_id, _, other_secret = new_project(engine, "other")
        rows = [
            {
                "delivery_id": f"d{n}",
                "provider": ("resend", "github", "acme")[n % 3],
                "sender": None if n % 5 == 0 else f"s{n * n % 13}",
                "received_at": AT + timedelta(seconds=n),
            }
            for n in range(40)
        ]
        _deliveries(engine, api.project_id, rows[:25])
        _deliveries(engine, api.project_id, rows[25:])  # a second statement
        _deliveries(engine, other_id, rows[:7])
        # Duplicates are not stored, so not counted.
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id,"
                    " headers, body) VALUES (:p, 'resend', 'd0', '{}', '\\x')"
                    " ON CONFLICT DO NOTHING"
                ),
                {"p": api.project_id},
            )
        assert _stats(api) == _stats_from_raw(api, api.project_id)
        assert _stats(api)["total"] == 40
        assert _stats(api, other_secret) == _stats_from_raw(api, other_id)
        body = api.get("/v1/stats", headers=api.bearer()).json()
        assert body["first_message_at"].startswith("2026-11-30T12:00:00")
        assert body["last_message_at"].startswith("2026-11-30T12:00:39")

        # Retention or a deletion request removes rows: the counts follow.
        with engine.begin() as conn:
            conn.execute(
                text(
                    "DELETE FROM raw.webhook_deliveries WHERE project_id = :p"
                    " AND (sender = 's1' OR provider = 'acme')"
                ),
                {"p": api.project_id},
            )
        assert _stats(api) == _stats_from_raw(api, api.project_id)
        assert "s1" not in {t["sender"] for t in _stats(api)["top"]}

        with engine.begin() as conn:
            conn.execute(text("TRUNCATE raw.webhook_deliveries"))
        assert _stats(api) == {"total": 0, "senders": 0, "by_source": {}, "top": []}
        assert _stats(api, other_secret)["total"] == 0


def test_a_read_past_the_statement_timeout_is_a_503_and_the_next_read_works(
    settings: Settings, engine: Engine
) -> None:
    quick = settings.model_copy(update={"reader_statement_timeout_ms": 300})
    with served_ingest(quick, engine) as api:
        api.post("/v1/track", json={"event": "E", "userId": "u"})
        # A read that cannot finish: the table is locked by another transaction.
        with psycopg.connect(libpq_dsn(settings.require_database_url())) as blocker:
            blocker.execute("LOCK TABLE raw.events IN ACCESS EXCLUSIVE MODE")
            answer = api.get("/v1/events/recent", headers=api.bearer())
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"] == "timeout"
            assert "300 ms" in answer.json()["message"]
            assert answer.headers["retry-after"] == "5"
            blocker.rollback()
        again = api.get("/v1/events/recent", headers=api.bearer())
        assert again.status_code == 200
        assert [e["event"] for e in again.json()["events"]] == ["E"]


def _plan(settings: Settings, project_id: int, query: str, params: dict[str, Any]) -> str:
    """The plan of `query` as the API runs it: the reader, scoped, with the same values."""
    with psycopg.connect(libpq_dsn(settings.require_database_url())) as conn:
        conn.execute("SET ROLE lytics_reader")
        conn.execute("SELECT set_config('lytics.project_id', %s, true)", (str(project_id),))
        rows = conn.execute("EXPLAIN " + query, params).fetchall()
    return "\n".join(row[0] for row in rows)


def test_lists_are_read_from_an_index_not_a_scan(settings: Settings, engine: Engine) -> None:
    # Enough rows, in several projects, that a scan of the table would be the planner's
    # choice for any query an index did not fit.
    big, _, _ = new_project(engine, "big")
    small, _, _ = new_project(engine, "small")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.events (project_id, message_id, type, timestamp, received_at,"
                " source, payload)"
                " SELECT CASE WHEN g % 10 = 0 THEN :small ELSE :big END, 'm' || g, 'track',"
                " :at, :at + g * interval '1 second', 'native', '{}'"
                " FROM generate_series(1, 50000) g"
            ),
            {"big": big, "small": small, "at": AT},
        )
        conn.execute(
            text(
                "INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id, sender,"
                " headers, body, payload, received_at)"
                " SELECT CASE WHEN g % 10 = 0 THEN :small ELSE :big END,"
                " CASE WHEN g % 4 = 0 THEN 'github' ELSE 'resend' END, 'd' || g, 's' || g % 500,"
                " '{}', '\\x', jsonb_build_object('n', g), :at + g * interval '1 second'"
                " FROM generate_series(1, 20000) g"
            ),
            {"big": big, "small": small, "at": AT},
        )
        conn.execute(text("ANALYZE raw.events; ANALYZE raw.webhook_deliveries"))
    cursor = {"before_at": AT + timedelta(hours=3), "before_id": 10_000}
    first = {"before_at": None, "before_id": None}
    cases = [
        ("events", reads.RECENT_EVENTS, {"limit": 21, **first}),
        ("events", reads.RECENT_EVENTS, {"limit": 101, **cursor}),
    ]
    for source, sender in ((None, None), ("github", None), (None, "s7"), ("resend", "s8")):
        for bounds in (first, cursor):
            params = {"limit": 51, "source": source, "sender": sender, "since": None, **bounds}
            cases.append(("webhook_deliveries", reads.MESSAGES, params))
    for project in (big, small):
        for n, (table, query, params) in enumerate(cases):
            plan = _plan(settings, project, query, params)
            assert f"ix_{table}_project_id_" in plan, plan
            assert "Seq Scan" not in plan, plan
            if params.get("source") is None and params.get("sender") is None:
                # Unfiltered: the first rows of the index are the answer, nothing to sort.
                assert f"Index Scan Backward using ix_{table}_project_id_received_at_id" in plan
                assert "Sort" not in plan, (n, plan)


def test_upgrading_counts_and_indexes_what_was_stored_before(
    settings: Settings, engine: Engine, database_url: str
) -> None:
    """Migration 0010 on a database that already holds deliveries: counted and searchable."""
    migrate.downgrade(database_url, "0009")
    project_id, _, secret = new_project(engine, "before")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id, sender,"
                " headers, body, payload, received_at)"
                " SELECT :p, CASE WHEN g % 2 = 0 THEN 'resend' ELSE 'github' END, 'd' || g,"
                " 's' || g % 7, '{}', '\\x', jsonb_build_object('subject', 'Invoice ' || g),"
                " :at + g * interval '1 second' FROM generate_series(1, 50) g"
            ),
            {"p": project_id, "at": AT},
        )
    migrate.upgrade(database_url)
    with served_ingest(settings, engine) as api:
        stats = _stats(api, secret)
        assert stats == _stats_from_raw(api, project_id)
        assert stats["total"] == 50
        assert stats["senders"] == 7
        found = api.get("/v1/messages?q=invoice 17", headers=api.bearer(secret)).json()["data"]
        assert [m["delivery_id"] for m in found] == ["d17"]


def test_a_new_sender_stored_by_two_transactions_at_once_counts_once(
    settings: Settings, engine: Engine
) -> None:
    project_id, _, _ = new_project(engine, "race")
    insert = (
        "INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id, sender, headers,"
        " body) VALUES (%s, 'resend', %s, 'new@example.com', '{}', '\\x')"
    )
    dsn = libpq_dsn(settings.require_database_url())
    with psycopg.connect(dsn) as first, psycopg.connect(dsn) as second:
        first.execute(insert, (project_id, "a"))  # its sender row exists, uncommitted
        pid = second.info.backend_pid
        with ThreadPoolExecutor(1) as pool:
            later = pool.submit(
                lambda: (second.execute(insert, (project_id, "b")), second.commit())
            )
            # The second transaction waits on the first's new sender row.
            deadline = time.monotonic() + 30
            while not first.execute(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()[0]:  # type: ignore[index]
                assert time.monotonic() < deadline, "the second insert never waited"
                time.sleep(0.02)
            first.commit()
            later.result(timeout=30)
    with engine.connect() as conn:
        totals = conn.execute(
            text("SELECT messages, senders FROM raw.webhook_totals WHERE project_id = :p"),
            {"p": project_id},
        ).one()
        sender = conn.execute(
            text("SELECT messages FROM raw.webhook_sender_counts WHERE project_id = :p"),
            {"p": project_id},
        ).scalar_one()
    assert tuple(totals) == (2, 1)
    assert sender == 2
