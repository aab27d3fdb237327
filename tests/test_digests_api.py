"""The digest endpoints over real HTTP: preview, test send, launch, status, unsubscribe.

The ingest API is served by uvicorn on a fresh database, Resend is the local
stand-in (tests/support/fake_resend.py), Dagster is a real dagster-webserver
(tests/support/dagster_ui.py; no daemon, so launched runs stay queued).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from lytics.digests import runs
from lytics.digests.content import build, project_info
from lytics.digests.scoped import project_transaction, reader_engine
from lytics.digests.service import run_digest
from lytics.projects import create_project
from lytics.settings import Settings
from lytics.warehouse.engine import role_engine
from lytics.warehouse.logins import PIPELINE, READER, role_login
from lytics.warehouse.urls import libpq_dsn
from tests.support.digests import (
    WEEK,
    add_members,
    create_marts,
    deliveries,
    digest_settings,
    seed_two_weeks,
)
from tests.support.fake_resend import FakeResend
from tests.support.http import free_port
from tests.support.ingest import Ingest, served_ingest

ALICE = "alice@example.com"
BOB = "bob@example.com"
# The HTML pages' policy: the inline styles a browser needs, and nothing else (no scripts).
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


@pytest.fixture
def api_settings(settings: Settings, fake: FakeResend) -> Settings:
    # Nothing listens on this port: launches fail unless a test brings a real Dagster.
    return digest_settings(
        settings, fake, dagster_graphql_url=f"http://127.0.0.1:{free_port()}/graphql"
    )


@pytest.fixture
def api(api_settings: Settings, engine: Engine) -> Iterator[Ingest]:
    create_marts(engine)
    with served_ingest(api_settings, engine) as ingest:
        seed_two_weeks(engine, ingest.project_id)
        add_members(engine, ingest.project_id, [ALICE, BOB])
        yield ingest


def _send_weekly(settings: Settings, database_url: str, **request: Any) -> None:
    engine = role_engine(role_login(PIPELINE, database_url, None))
    try:
        run_digest(
            engine,
            settings.model_copy(update={"digest_cooldown_seconds": 0}),
            runs.RunRequest(period_start=WEEK, **request),
            [WEEK],
        )
    finally:
        engine.dispose()


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _elements(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(markup)
    return parser.tags


def _preview(api: Ingest, **params: Any) -> httpx.Response:
    query = {"email": ALICE, "week": WEEK.isoformat()} | params
    return api.get("/v1/digest/preview", params=query, headers=api.bearer())


# --------------------------------------------------------------------------- preview


def test_preview_is_byte_for_byte_what_the_run_sends(
    api: Ingest, api_settings: Settings, database_url: str, fake: FakeResend
) -> None:
    preview = _preview(api)
    assert preview.status_code == 200
    assert preview.headers["content-type"].startswith("text/html")
    assert preview.headers.get_list("content-security-policy") == [PAGE_CSP]
    assert fake.emails == []  # a preview sends nothing
    as_json = _preview(api, format="json").json()

    _send_weekly(api_settings, database_url)
    sent = fake.to(ALICE)
    assert len(sent) == 1
    assert sent[0].html == preview.text
    assert sent[0].text == as_json["text"]
    assert sent[0].subject == as_json["subject"]
    assert sent[0].headers == as_json["headers"]


def test_the_email_is_mail_client_html_with_a_text_part_and_unsubscribe_headers(
    api: Ingest,
) -> None:
    message = _preview(api, format="json").json()
    tags = _elements(message["html"])
    names = {tag for tag, _ in tags}
    assert not names & {"script", "iframe", "object", "embed", "form", "link", "img"}
    assert "style" not in names  # no <style> block: clients strip it, so CSS is inline
    styled = [attrs for tag, attrs in tags if tag in {"td", "p", "h1", "table"}]
    assert styled
    assert all(attrs.get("style") for attrs in styled)
    assert not re.search(r"\son[a-z]+\s*=", message["html"])  # no event handlers
    assert "table" in names
    # The numbers and the insights are there, in both parts.
    assert "Sessions" in message["html"]
    assert "123" in message["html"]
    assert "Sessions up 23 %" in message["text"]
    assert "news.example.com" in message["text"]
    assert message["text"].strip()
    assert "<" not in message["text"]
    url = message["headers"]["List-Unsubscribe"].strip("<>")
    assert url.startswith("http://lytics.test/v1/digest/unsubscribe?token=")
    assert message["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert url.replace("&", "&amp;") in message["html"]


def test_preview_is_refused_for_other_projects_and_without_a_key(api: Ingest) -> None:
    assert _preview(api, project="someone-else").status_code == 403
    no_key = api.get("/v1/digest/preview", params={"email": ALICE})
    assert no_key.status_code == 401


def test_a_week_without_data_has_nothing_to_preview(api: Ingest) -> None:
    answer = _preview(api, week="2026-06-03")
    assert answer.status_code == 404
    assert answer.json()["error"] == "no_data"


# --------------------------------------------------------------------------- test send


def test_a_test_send_mails_now_and_marks_no_week(
    api: Ingest, api_settings: Settings, database_url: str, engine: Engine, fake: FakeResend
) -> None:
    answer = api.post(
        "/v1/digest/test",
        json={"email": ALICE, "week": WEEK.isoformat()},
        headers=api.bearer(),
        auth=None,
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["id"] == fake.emails[0].id
    assert fake.emails[0].subject.startswith("[Test] ")
    assert deliveries(engine) == {}
    # The real run still mails Alice: the test send did not count as her digest.
    _send_weekly(api_settings, database_url)
    assert fake.per_recipient() == {ALICE: 2, BOB: 1}


def test_a_test_send_to_a_suppressed_address_is_refused(
    api: Ingest, engine: Engine, fake: FakeResend
) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id, "
                "event_type, headers, body, payload) VALUES (:p, 'resend', 'm1', "
                "'email.complained', '{}', 'x', :payload)"
            ),
            {
                "p": api.project_id,
                "payload": json.dumps({"type": "email.complained", "data": {"to": [BOB]}}),
            },
        )
    answer = api.post("/v1/digest/test", json={"email": BOB}, headers=api.bearer(), auth=None)
    assert answer.status_code == 409
    assert answer.json()["error"] == "suppressed"
    assert fake.emails == []


# --------------------------------------------------------------------------- unsubscribe


def _unsubscribe_url(api: Ingest) -> str:
    message = _preview(api, format="json").json()
    public = str(message["headers"]["List-Unsubscribe"]).strip("<>")
    return api.base + urlsplit(public).path + "?" + urlsplit(public).query


def test_one_click_unsubscribe_stops_the_digest(
    api: Ingest, api_settings: Settings, database_url: str, engine: Engine, fake: FakeResend
) -> None:
    url = _unsubscribe_url(api)
    page = httpx.get(url)
    assert page.status_code == 200
    assert "<form" in page.text
    assert page.headers.get_list("content-security-policy") == [PAGE_CSP]
    assert _enabled(engine, ALICE)  # viewing the page (a link scanner) changes nothing

    # RFC 8058: the mail client POSTs this body to the List-Unsubscribe URL.
    answer = httpx.post(
        url,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200
    assert not _enabled(engine, ALICE)
    assert _enabled(engine, BOB)
    _send_weekly(api_settings, database_url)
    assert fake.per_recipient() == {BOB: 1}


def test_a_tampered_token_is_rejected(api: Ingest, engine: Engine) -> None:
    url = _unsubscribe_url(api)
    token = parse_qs(urlsplit(url).query)["token"][0]
    body, _, mac = token.partition(".")
    forged_body = body[:-2] + ("AA" if body[-2:] != "AA" else "BB")
    for forged in (f"{forged_body}.{mac}", f"{body}.{mac[:-2]}xx", "garbage", f"{body}."):
        answer = httpx.post(url.split("?")[0], params={"token": forged})
        assert answer.status_code == 400, forged
    assert _enabled(engine, ALICE)


def _enabled(engine: Engine, email: str) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT m.digest_enabled FROM app.project_members m "
                    "JOIN app.users u ON u.id = m.user_id WHERE u.email = :e"
                ),
                {"e": email},
            ).scalar_one()
        )


# --------------------------------------------------------------------------- launch


def test_a_failed_launch_frees_the_cooldown(api: Ingest, engine: Engine) -> None:
    for _ in range(2):
        answer = api.post(
            "/v1/digest/weekly", json={"scope": "all"}, headers=api.bearer(), auth=None
        )
        # Dagster is down: 503 both times, never 429 (the failed launch gave the slot back).
        assert answer.status_code == 503
        assert answer.json()["error"] == "dagster_unavailable"
    with engine.connect() as conn:
        statuses = [str(r[0]) for r in conn.execute(text("SELECT status FROM app.digest_runs"))]
    assert statuses == ["failed", "failed"]
    status = api.get("/v1/digest/status", headers=api.bearer()).json()
    assert status["last_run"]["status"] == "failed"
    assert status["cooldown_remaining_s"] == 0


@pytest.mark.slow
def test_concurrent_launches_yield_one_dagster_run_and_429_with_retry_after(
    settings: Settings, fake: FakeResend, engine: Engine, dagster_graphql_url: str
) -> None:
    create_marts(engine)
    launch_settings = digest_settings(settings, fake, dagster_graphql_url=dagster_graphql_url)
    with served_ingest(launch_settings, engine) as api:
        barrier = threading.Barrier(20)
        answers: list[httpx.Response] = []

        def trigger() -> None:
            barrier.wait()
            answers.append(
                api.post(
                    "/v1/digest/weekly",
                    json={"scope": "all", "week": WEEK.isoformat()},
                    headers=api.bearer(),
                    auth=None,
                )
            )

        threads = [threading.Thread(target=trigger) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        codes = sorted(a.status_code for a in answers)
        assert codes == [202] + [429] * 19, [a.text for a in answers if a.status_code != 429]
        launched = next(a for a in answers if a.status_code == 202).json()
        refused = [a for a in answers if a.status_code == 429]
        assert all(590 <= int(a.headers["Retry-After"]) <= 600 for a in refused)
        assert refused[0].json()["error"] == "cooldown"

        status = api.get("/v1/digest/status", headers=api.bearer()).json()
        assert status["last_run"]["dagster_run_id"] == launched["run_id"]
        assert status["last_run"]["status"] == "running"
        assert status["dagster_status"] == "QUEUED"  # no daemon in the test instance
        assert status["cooldown_remaining_s"] > 590

        # Dagster accepted the run config (scope, project, the claimed run) for the week.
        run = httpx.post(
            dagster_graphql_url,
            json={
                "query": "query($id: ID!) { runOrError(runId: $id) { ... on Run { "
                "status jobName tags { key value } runConfigYaml } } }",
                "variables": {"id": launched["run_id"]},
            },
        ).json()["data"]["runOrError"]
    assert run["jobName"] == "weekly_digest"
    assert run["status"] == "QUEUED"
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/partition"] == WEEK.isoformat()
    assert tags["lytics/digest_run_id"] == str(launched["digest_run_id"])
    assert "digest_run_id" in run["runConfigYaml"]


# --------------------------------------------------------------------------- email events


def test_email_events_summary_counts_the_last_day_by_type(api: Ingest, engine: Engine) -> None:
    with engine.begin() as conn:
        for i, kind in enumerate(["email.delivered", "email.delivered", "email.bounced"]):
            conn.execute(
                text(
                    "INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id, "
                    "event_type, headers, body, payload) VALUES (:p, 'resend', :d, :t, '{}', "
                    "'x', :payload)"
                ),
                {
                    "p": api.project_id,
                    "d": f"m{i}",
                    "t": kind,
                    "payload": json.dumps({"type": kind, "data": {"to": [f"u{i}@example.com"]}}),
                },
            )
        conn.execute(
            text(
                "INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id, "
                "event_type, headers, body, payload, received_at) VALUES (:p, 'resend', 'old', "
                "'email.opened', '{}', 'x', '{}', now() - interval '2 days')"
            ),
            {"p": api.project_id},
        )
    summary = api.get("/v1/email-events/summary", headers=api.bearer()).json()
    assert summary["by_type"] == {"delivered": 2, "bounced": 1}
    assert summary["total"] == 3
    assert len(summary["latest"]) == 4
    assert summary["latest"][0]["email"] in {"u0@example.com", "u1@example.com", "u2@example.com"}


def test_the_digest_tiles_are_the_dashboard_tiles(api: Ingest, engine: Engine) -> None:
    dashboard = api.get(
        "/v1/dashboard/tiles",
        params={"from": WEEK.isoformat(), "to": "2026-11-15"},
        headers=api.bearer(),
    ).json()
    with engine.connect() as conn:
        content = build(conn, project_info(conn, api.project_id), WEEK)
    shown = {t.key: t.as_dict() for t in content.tiles}
    from_dashboard = {t["key"]: t for t in dashboard["tiles"] + dashboard["metrics"]}
    assert dashboard["previous"]["from"] == "2026-11-02"
    assert set(shown) == {"sessions", "pageviews", "unique_visitors", "conversions"} | {
        "reach",
        "engagement",
    }
    for key, tile in shown.items():
        assert tile == from_dashboard[key], key
    assert shown["sessions"]["change_pct"] == 23.0


def test_the_reader_role_sees_and_changes_only_its_own_projects_digest_rows(
    database_url: str, engine: Engine
) -> None:
    with engine.begin() as conn:
        mine = create_project(conn, "mine").id
        theirs = create_project(conn, "theirs").id
    add_members(engine, mine, ["me@example.com"])
    add_members(engine, theirs, ["them@example.com"])
    with psycopg.connect(libpq_dsn(database_url), options="-c role=lytics_reader") as conn:
        conn.execute("SELECT set_config('lytics.project_id', %s, true)", (str(mine),))
        emails = [r[0] for r in conn.execute("SELECT email FROM app.users").fetchall()]
        assert emails == ["me@example.com"]
        changed = conn.execute("UPDATE app.project_members SET digest_enabled = false").rowcount
        assert changed == 1  # its own member only
        claimed = conn.execute(
            "INSERT INTO app.digest_runs (period_start, project_id, cooldown) "
            "VALUES ('2026-11-09', %s, tstzrange(now(), now() + interval '1 minute')) "
            "RETURNING id",
            (mine,),
        ).fetchone()
        assert claimed is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE app.project_members SET role = 'owner'")
    for statement, params in [
        (
            "INSERT INTO app.digest_runs (period_start, project_id, cooldown) "
            "VALUES ('2026-11-09', %s, 'empty')",
            (theirs,),
        ),
        ("SELECT * FROM app.email_suppressions", None),
        ("UPDATE app.digest_runs SET sent = 5", None),
    ]:
        with psycopg.connect(libpq_dsn(database_url), options="-c role=lytics_reader") as conn:
            conn.execute("SELECT set_config('lytics.project_id', %s, true)", (str(mine),))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement, params)


THIS_WEEK = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
BAD_INPUT = [
    ("GET", "/v1/digest/preview", {"email": "a\x00@example.com"}),
    ("GET", "/v1/digest/preview", {"email": ALICE, "week": "0001-01-01"}),
    ("GET", "/v1/digest/preview", {"email": ALICE, "week": "next tuesday"}),
    ("POST", "/v1/digest/test", {"email": "two@@example.com"}),
    ("POST", "/v1/digest/test", {"email": "bad\x00@example.com"}),
    ("POST", "/v1/digest/weekly", {"scope": "email", "email": "no-at-sign"}),
    ("POST", "/v1/digest/weekly", {"scope": "email"}),
    # A week that has not ended: mailing it would mark it sent with partial numbers.
    ("POST", "/v1/digest/weekly", {"scope": "all", "week": THIS_WEEK}),
]


def test_bad_input_is_a_400_not_a_500(api: Ingest, engine: Engine) -> None:
    for method, path, payload in BAD_INPUT:
        if method == "GET":
            answer = api.get(path, params=payload, headers=api.bearer())
        else:
            answer = api.post(path, json=payload, headers=api.bearer(), auth=None)
        assert answer.status_code == 400, (payload, answer.text)
        assert answer.json()["error"] == "invalid"
    assert deliveries(engine) == {}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM app.digest_runs")).scalar() == 0


def test_the_digest_reader_stops_a_statement_past_the_read_timeout(database_url: str) -> None:
    engine = reader_engine(role_login(READER, database_url, None), 150)
    # Set per transaction, so it holds through pgbouncer and ends with the transaction.
    with (
        pytest.raises(OperationalError, match="statement timeout"),
        project_transaction(engine, 1) as conn,
    ):
        conn.exec_driver_sql("SELECT pg_sleep(30)")
