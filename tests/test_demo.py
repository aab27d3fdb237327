"""`lytics demo` sends through the real API and what gets stored equals the truth it writes."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from lytics.demo import sender, truth
from lytics.demo.model import Parameters, generate
from lytics.settings import Settings
from lytics_ingest_api.app import create_app
from tests.support import TEST_SECRET
from tests.support.cli import invoke
from tests.support.http import serve

# Friday to Sunday: weekdays and a weekend. Seed 1 at this size has conversions in both
# projects, sessions with and without ids, and every kind of email event.
ARGS = ("--seed", "1", "--projects", "2", "--days", "3", "--visitors", "100")
END = "2025-03-09"
SMALL = Parameters(seed=1, projects=2, days=3, visitors=100, end_date=date(2025, 3, 9))

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """ASGI middleware keeping every request's path, headers and exact body bytes."""

    app: Any
    requests: list[Recorded] = field(default_factory=list)

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        await self.app(scope, receiving, send)
        query = scope["query_string"].decode()
        self.requests.append(
            Recorded(
                scope["path"] + (f"?{query}" if query else ""),
                {k.decode(): v.decode() for k, v in scope["headers"]},
                b"".join(chunks),
            )
        )


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def api(settings: Settings) -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder(create_app(settings))
    with serve(recorder) as base:
        yield base, recorder


@pytest.fixture
def demo(
    api: tuple[str, Recorder],
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., Run]:
    """Run `lytics demo ARGS` in-process against the served API and the test database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    # The API decrypts webhook secrets with the key the command encrypted them with.
    monkeypatch.setenv("LYTICS_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("LYTICS_DATA_DIR", str(tmp_path / "data"))

    def run(*args: str, api_url: str | None = None) -> Run:
        argv = ["demo", "--api-url", api_url or api[0], "--end-date", END, *args]
        result = invoke(monkeypatch, capsys, *argv)
        return Run(result.code, result.out, result.err)

    return run


def _rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)))


EVENTS_BY_DAY = """
SELECT p.slug, (e.timestamp AT TIME ZONE 'UTC')::date AS day,
       count(*) AS events,
       count(*) FILTER (WHERE e.type = 'page') AS pageviews,
       count(DISTINCT e.anonymous_id) AS unique_visitors,
       count(*) FILTER (
           WHERE e.type = 'track' AND jsonb_exists(p.settings -> 'conversion_events', e.event)
       ) AS conversions,
       coalesce(sum((e.payload -> 'properties' ->> 'revenue')::numeric) FILTER (
           WHERE e.type = 'track' AND jsonb_exists(p.settings -> 'conversion_events', e.event)
       ), 0) AS revenue,
       count(DISTINCT e.session_id) AS sessions_with_id
FROM raw.events e JOIN app.projects p ON p.id = e.project_id
GROUP BY 1, 2
"""

# Sessionized over all time, not per day: proves that no inferred session crosses midnight.
INFERRED_SESSIONS = """
WITH unsessioned AS (
    SELECT project_id, timestamp,
           lag(timestamp) OVER (PARTITION BY project_id, anonymous_id ORDER BY timestamp) AS prev
    FROM raw.events WHERE session_id IS NULL
)
SELECT p.slug, (u.timestamp AT TIME ZONE 'UTC')::date AS day,
       count(*) FILTER (WHERE u.prev IS NULL OR u.timestamp - u.prev > interval '30 minutes')
FROM unsessioned u JOIN app.projects p ON p.id = u.project_id
GROUP BY 1, 2
"""

METRICS = """
SELECT p.slug, m.metric_date, m.metric_name, m.metric_value
FROM raw.metrics m JOIN app.projects p ON p.id = m.project_id
WHERE m.source = 'demo'
"""

EMAILS = """
SELECT p.slug, ((w.payload ->> 'created_at')::timestamptz AT TIME ZONE 'UTC')::date,
       w.event_type, count(*)
FROM raw.webhook_deliveries w JOIN app.projects p ON p.id = w.project_id
WHERE w.provider = 'resend'
GROUP BY 1, 2, 3
"""


def test_demo_stores_exactly_its_ground_truth(
    demo: Callable[..., Run], engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "truth.json"
    run = demo(*ARGS, "--truth", str(path))
    assert run.code == 0, run.err
    assert "0 rejected" in run.out
    assert "failed requests: 0" in run.out
    assert "sending" in run.err  # the progress bar, on stderr
    expected = json.loads(path.read_text())
    projects = expected["projects"]
    assert set(projects) == {"demo-s1-1", "demo-s1-2"}

    stored: dict[tuple[str, str], dict[str, Any]] = {
        (slug, day.isoformat()): {
            "events": events,
            "pageviews": pageviews,
            "unique_visitors": visitors,
            "conversions": conversions,
            "revenue": Decimal(revenue),
            "sessions_with_id": sessions,
            "sessions_inferred": 0,
        }
        for slug, day, events, pageviews, visitors, conversions, revenue, sessions in _rows(
            engine, EVENTS_BY_DAY
        )
    }
    for slug, day, inferred in _rows(engine, INFERRED_SESSIONS):
        stored[(slug, day.isoformat())]["sessions_inferred"] = inferred
    wanted = {
        (slug, day): {
            **{k: v[k] for k in stored[(slug, day)] if k != "revenue"},
            "revenue": Decimal(str(v["revenue"])),
        }
        for slug, project in projects.items()
        for day, v in project["days"].items()
    }
    assert stored == wanted
    assert expected["totals"]["conversions"] > 0
    assert expected["totals"]["sessions_inferred"] > 0
    assert sum(p["totals"]["sessions"] for p in projects.values()) == sum(
        v["sessions_with_id"] + v["sessions_inferred"] for v in stored.values()
    )

    metrics = {
        (slug, day.isoformat(), name): value for slug, day, name, value in _rows(engine, METRICS)
    }
    assert metrics == {
        (slug, day, name): Decimal(str(value))
        for slug, project in projects.items()
        for day, values in project["metrics"].items()
        for name, value in values.items()
    }

    emails = {(slug, day.isoformat(), kind): n for slug, day, kind, n in _rows(engine, EMAILS)}
    assert emails == {
        (slug, day, kind): n
        for slug, project in projects.items()
        for day, counts in project["email_events"].items()
        for kind, n in counts.items()
        if n
    }
    assert all(expected["email_totals"].values())  # every Resend event type was sent

    settings = dict(_rows(engine, "SELECT slug, settings FROM app.projects"))
    assert settings["demo-s1-1"]["conversion_events"] == ["Signed Up", "Purchase"]


def test_same_seed_twice_stores_nothing_new_and_sends_the_same_bytes(
    demo: Callable[..., Run], api: tuple[str, Recorder], engine: Engine, tmp_path: Path
) -> None:
    first = demo(*ARGS, "--truth", str(tmp_path / "a.json"))
    assert first.code == 0, first.err
    recorder = api[1]
    first_requests, recorder.requests = recorder.requests, []
    count = (
        "SELECT (SELECT count(*) FROM raw.events), (SELECT count(*) FROM raw.webhook_deliveries)"
    )
    before = _rows(engine, count)

    second = demo(*ARGS, "--truth", str(tmp_path / "b.json"))
    assert second.code == 0, second.err
    assert _rows(engine, count) == before
    events, webhooks = before[0]
    assert f"events: 0 accepted, {events} duplicates, 0 rejected" in second.out
    assert f"webhooks: 0 stored, {webhooks} duplicates" in second.out
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()

    def wire(requests: list[Recorded]) -> list[tuple[str, str, str, bytes]]:
        # Keys are issued per run and signatures carry the time; everything else is the same.
        return sorted(
            (r.path, r.headers.get("content-encoding", ""), r.headers.get("svix-id", ""), r.body)
            for r in requests
            if r.path != "/health/live"
        )

    assert wire(recorder.requests) == wire(first_requests)
    assert any(r.headers.get("content-encoding") == "gzip" for r in first_requests)
    assert any(r.path.startswith("/v1/webhooks/resend?project=") for r in first_requests)


def test_unreachable_api_or_incomplete_day_is_a_clear_error(demo: Callable[..., Run]) -> None:
    run = demo(*ARGS, "--no-webhooks", api_url="http://127.0.0.1:1")
    assert run.code == 1
    assert "cannot reach the ingest API at http://127.0.0.1:1" in run.err
    today = datetime.now(UTC).date().isoformat()
    run = demo(*ARGS, "--end-date", today)
    assert run.code == 2
    assert "not a complete day yet" in run.err


# --------------------------------------------------------------------- the model


def test_same_seed_same_traffic_truth_and_bodies_other_seeds_differ() -> None:
    def bodies(params: Parameters) -> tuple[bytes, list[bytes]]:
        traffic = generate(params)
        computed = truth.compute(traffic)
        return computed.render(), [r.body for r in sender.plan(traffic, computed, 50)]

    assert bodies(SMALL) == bodies(SMALL)
    other = Parameters(2, SMALL.projects, SMALL.days, SMALL.visitors, SMALL.end_date)
    assert bodies(other)[0] != bodies(SMALL)[0]
    ids = {e["messageId"] for p in generate(SMALL).projects for e in p.events}
    assert ids.isdisjoint(e["messageId"] for p in generate(other).projects for e in p.events)


def test_a_day_is_the_same_whatever_the_window() -> None:
    """Runs on different days re-send identical events for the days they share."""
    week = generate(Parameters(1, 1, 7, 80, date(2025, 3, 9))).projects[0].events
    later = generate(Parameters(1, 1, 3, 80, date(2025, 3, 11))).projects[0].events

    def on(day: str, events: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
        return [e for e in events if e["timestamp"].startswith(day)]

    assert on("2025-03-09", week) == on("2025-03-09", later) != []


def test_traffic_is_realistic_and_sessionizable() -> None:
    traffic = generate(Parameters(3, 2, 14, 150, date(2025, 3, 9)))
    events = [e for p in traffic.projects for e in p.events]
    assert len({e["messageId"] for e in events}) == len(events)
    by_visitor: defaultdict[str, list[datetime]] = defaultdict(list)
    for e in events:
        by_visitor[e["anonymousId"]].append(datetime.fromisoformat(e["timestamp"]))
    for moments in by_visitor.values():
        moments.sort()
        for a, b in pairwise(moments):
            # Inside a session or clearly between two: a 30-minute timeout is unambiguous.
            assert b - a <= timedelta(minutes=25) or b - a >= timedelta(minutes=35)
        assert all(
            timedelta(minutes=20) <= m - m.replace(hour=0, minute=0, second=0, microsecond=0)
            for m in moments
        )
    sessions: defaultdict[str, set[date]] = defaultdict(set)
    for e in events:
        if "sessionId" in e["context"]:
            sessions[e["context"]["sessionId"]].add(datetime.fromisoformat(e["timestamp"]).date())
    assert all(len(days) == 1 for days in sessions.values())  # no session crosses midnight

    kinds = Counter((e["type"], e.get("event")) for e in events)
    assert kinds[("track", "Signed Up")]
    assert kinds[("track", "Purchase")]
    assert kinds[("identify", None)]
    assert any(e.get("userId") for e in events)
    assert sum(n for (kind, name), n in kinds.items() if kind == "track") > 2 * (
        kinds[("track", "Signed Up")] + kinds[("track", "Purchase")]
    )
    assert any("campaign" in e["context"] for e in events)
    referrers = {e["context"]["page"].get("referrer") for e in events if e["type"] == "page"}
    assert {
        "",
        "https://www.google.com/",
        "https://t.co/",
        "https://news.ycombinator.com/",
    } <= referrers
    assert 0.05 < sum("sessionId" not in e["context"] for e in events) / len(events) < 0.4
    weekday = Counter(
        datetime.fromisoformat(e["timestamp"]).weekday() for e in traffic.projects[0].events
    )
    assert weekday[1] > weekday[6]  # the B2B site is busier on Tuesdays than on Sundays


# --------------------------------------------------------------------- the sender


def test_signature_matches_the_standard_webhooks_reference() -> None:
    # The test vector of the Standard Webhooks specification (and Svix's libraries).
    signature = sender.sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _send_one(
    handler: Callable[[httpx.Request], httpx.Response],
) -> tuple[sender.SendReport, list[float]]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    request = sender.PlannedRequest(
        "events", "p", "/v1/batch", b'{"batch":[]}', items=2, message_ids=("m1", "m2")
    )
    report = asyncio.run(
        sender.send(
            [request],
            {"p": sender.Credentials("lyw_x", "lys_x")},
            "http://api.test",
            transport=httpx.MockTransport(handler),
            sleep=sleep,
        )
    )
    return report, waits


ACCEPTED = {"accepted": 2, "duplicate": 0, "rejected": 0, "results": []}


def test_429_and_503_are_retried_honouring_retry_after() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(503),
            httpx.Response(200, json=ACCEPTED),
        ]
    )
    report, waits = _send_one(lambda request: next(answers))
    assert (report.ok, report.accepted, report.retries) == (True, 2, 2)
    assert waits == [3.0, 1.0]  # Retry-After, then exponential backoff


def test_a_request_that_keeps_failing_or_rejected_events_fail_the_run() -> None:
    report, waits = _send_one(lambda request: httpx.Response(503, headers={"Retry-After": "0"}))
    assert (report.ok, report.failed_requests, len(waits)) == (False, 1, sender.MAX_ATTEMPTS - 1)
    assert "gave up after 5 attempts (HTTP 503)" in report.errors[0]

    rejected = {
        "accepted": 1,
        "duplicate": 0,
        "rejected": 1,
        "results": [{"index": 1, "status": "rejected", "message": "bad timestamp"}],
    }
    report, _ = _send_one(lambda request: httpx.Response(200, json=rejected))
    assert (report.ok, report.accepted, report.rejected) == (False, 1, 1)
    assert report.errors == ["event m2 rejected: bad timestamp"]

    report, _ = _send_one(lambda request: httpx.Response(401, json={"error": "unauthorized"}))
    assert (report.ok, report.failed_requests) == (False, 1)


def test_plan_batches_compresses_some_and_authenticates_each_kind() -> None:
    traffic = generate(SMALL)
    requests = sender.plan(traffic, truth.compute(traffic), batch_size=20)
    batches = [r for r in requests if r.kind == "events"]
    assert all(r.items <= 20 for r in batches)
    assert sum(r.items for r in batches) == sum(len(p.events) for p in traffic.projects)
    assert any(r.gzip for r in batches)
    assert not all(r.gzip for r in batches)
    keys = sender.Credentials("lyw_w", "lys_s", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    by_kind = {r.kind: sender.headers(r, keys, 1_700_000_000) for r in requests}
    assert by_kind["events"]["Authorization"] == "Basic bHl3X3c6"  # "lyw_w:"
    assert by_kind["metrics"]["Authorization"] == "Bearer lys_s"
    assert by_kind["webhook"]["svix-timestamp"] == "1700000000"
    assert by_kind["webhook"]["svix-signature"].startswith("v1,")
