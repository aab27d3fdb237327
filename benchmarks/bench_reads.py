"""Read API latency at scale: every secret-key read against its target of <= 50 ms.

In one throwaway database (an embedded Postgres in a temporary folder, or a fresh
database on the server of LYTICS_BENCH_DATABASE_URL, dropped at the end):

1. The schema as it was before the read indexes (migration 0009).
2. `--events` (5,000,000) events for four projects (the measured one has 70 %), received
   over the last `--days` (28) days, several per second (ties in `received_at`), from a
   skewed pool of visitors; `--deliveries` (500,000) webhook deliveries for the measured
   project (Resend 80 %, GitHub 20 %; senders from a skewed pool of `--senders` (20,000)
   addresses and logins) and 10 % as many for another project, over the same days. All
   generated in SQL (INSERT ... SELECT FROM generate_series), then VACUUM ANALYZE.
   The dashboard's marts (daily_site_metrics, daily_visitors, daily_visitor_recency,
   daily_kpi_metrics) are derived from those events in SQL, in the shape and with the
   indexes and row-level security that dbt and the tenant_isolation hook give them
   (building them with dbt at this size takes many minutes; bench_refresh.py measures
   that).
3. Before: the read queries as the API ran them before migration 0010, as the reader
   scoped to the project, `--before-calls` (3) times each.
4. `alembic upgrade head`, timed (the indexes are built CONCURRENTLY on the loaded tables).
5. (Printed last.) What the new raw.events index costs ingest: two copies of
   raw.events holding the same `--ingest-prefill` (1,000,000) rows, one without that
   index, receive `--ingest-rows` (20,000) events each in chunks of 500 rows, one commit
   per chunk (the writer's shape), alternately for `--ingest-rounds` (5) rounds.
6. The API served as in production (`python -m lytics_ingest_api`), a secret key, and each
   read endpoint called `--calls` (50) times after 3 warm-up calls, one at a time: median
   and max of the client-side latency, against 50 ms (PASS/MISS on the median and on the
   max). A MISS never changes the exit code.

Run: `flock /tmp/lytics-bench.lock .venv/bin/python benchmarks/bench_reads.py`
(~10-20 min on a 2-core machine). Develop with `--events 200000 --deliveries 20000`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_ingest import served  # noqa: E402
from benchmarks.scratch_database import scratch_database  # noqa: E402
from lytics import api_keys  # noqa: E402
from lytics.warehouse import migrate  # noqa: E402
from lytics.warehouse.engine import create_sync_engine  # noqa: E402
from lytics.warehouse.urls import libpq_dsn  # noqa: E402
from lytics_ingest_api.pagination import Position, encode  # noqa: E402

TARGET_MS = 50.0
BEFORE_INDEXES = "0009"
PROJECTS = (("bench-shop", 70), ("bench-docs", 15), ("bench-blog", 10), ("bench-status", 5))

EVENTS = """
INSERT INTO raw.events (project_id, message_id, type, event, anonymous_id, user_id,
                        timestamp, received_at, url, path, referrer, source, payload)
SELECT project_id, md5(g::text), kind, name, visitor, NULL, at - interval '80 ms', at,
       'https://shop.example.com' || path, path, NULL, 'segment',
       jsonb_build_object('type', kind, 'event', name, 'messageId', md5(g::text),
                          'anonymousId', visitor,
                          'properties', jsonb_build_object('path', path),
                          'context', jsonb_build_object('library',
                              jsonb_build_object('name', 'analytics.js',
                                                 'version', 'next-1.72.0')))
FROM (
    SELECT g,
           (%(projects)s::bigint[])[1 + (g %% 100 >= 70)::int + (g %% 100 >= 85)::int
                                      + (g %% 100 >= 95)::int] AS project_id,
           CASE WHEN g %% 5 = 0 THEN 'track' ELSE 'page' END AS kind,
           CASE WHEN g %% 5 = 0 THEN 'Clicked CTA' END AS name,
           'v' || floor(%(visitors)s * power(unit, 2))::bigint AS visitor,
           '/p/' || ((hashint4(g::int + 7)::bigint & 2147483647) %% 500) AS path,
           -- whole seconds: about two events share each received_at
           date_trunc('second', %(start)s::timestamptz
                      + (g::float8 / %(n)s) * %(span)s::interval) AS at
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g,
         LATERAL (SELECT (hashint4(g::int)::bigint & 2147483647) / 2147483648.0 AS unit) u
) e
"""

DELIVERIES = """
INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id, event_type, sender,
                                    headers, body, payload, received_at)
SELECT project_id, provider, provider || '-' || g, event_type, sender, '{}'::jsonb,
       convert_to(payload::text, 'UTF8'), payload, at
FROM (
    SELECT g, project_id, provider, at, sender, event_type,
           CASE WHEN provider = 'resend' THEN jsonb_build_object(
               'type', event_type, 'created_at', at,
               'data', jsonb_build_object('email_id', md5(g::text),
                   'from', 'news@shop.example.com', 'to', jsonb_build_array(sender),
                   'subject', 'Invoice ' || g || ' for order ' || (g * 7) %% 100000))
           ELSE jsonb_build_object('action', 'created', 'sender',
               jsonb_build_object('login', sender),
               'repository', jsonb_build_object('full_name', 'acme/widgets'),
               'zen', 'Half measures are as bad as nothing at all.') END AS payload
    FROM (
        SELECT g, %(project)s::bigint AS project_id,
               CASE WHEN g %% 5 = 0 THEN 'github' ELSE 'resend' END AS provider,
               date_trunc('second', %(start)s::timestamptz
                          + (g::float8 / %(n)s) * %(span)s::interval) AS at,
               CASE WHEN g %% 5 = 0 THEN 'login' ELSE 'user' END
                   || floor(%(senders)s * power(unit, 3))::int
                   || CASE WHEN g %% 5 = 0 THEN '' ELSE '@example.com' END AS sender,
               CASE WHEN g %% 5 = 0 THEN 'star'
                    WHEN g %% 100 < 60 THEN 'email.delivered'
                    WHEN g %% 100 < 85 THEN 'email.opened'
                    WHEN g %% 100 < 95 THEN 'email.clicked'
                    WHEN g %% 100 < 99 THEN 'email.bounced'
                    ELSE 'email.complained' END AS event_type
        FROM generate_series(1, %(n)s::bigint) AS g,
             LATERAL (SELECT (hashint4(g::int)::bigint & 2147483647) / 2147483648.0 AS unit) u
    ) d
) p
"""

# The marts the tiles read, as dbt builds them (dbt_project/models/marts) and as the
# tenant_isolation hook isolates them.
MARTS = """
CREATE SCHEMA IF NOT EXISTS analytics;
GRANT USAGE ON SCHEMA analytics TO lytics_reader;
CREATE TABLE analytics.daily_visitors AS
SELECT *, lag(visit_date) OVER (PARTITION BY project_id, visitor_id ORDER BY visit_date)
              AS previous_visit_date,
       now() AS built_at
FROM (
    SELECT project_id, timestamp::date AS visit_date, anonymous_id AS visitor_id,
           count(*) AS events, count(*) FILTER (WHERE type = 'page') AS pageviews,
           0::bigint AS conversions
    FROM raw.events GROUP BY 1, 2, 3
) AS days;
CREATE UNIQUE INDEX ON analytics.daily_visitors (project_id, visit_date, visitor_id);
CREATE INDEX ON analytics.daily_visitors (project_id, visitor_id, visit_date);
CREATE INDEX ON analytics.daily_visitors (previous_visit_date);
CREATE INDEX ON analytics.daily_visitors (built_at);
CREATE TABLE analytics.daily_visitor_recency AS
SELECT project_id, visit_date, previous_visit_date, count(*) AS visitors, now() AS built_at
FROM analytics.daily_visitors GROUP BY 1, 2, 3;
CREATE UNIQUE INDEX ON analytics.daily_visitor_recency
    (project_id, visit_date, coalesce(previous_visit_date, '-infinity'::date));
CREATE INDEX ON analytics.daily_visitor_recency (built_at);
CREATE TABLE analytics.daily_site_metrics AS
SELECT project_id, visit_date AS metric_date, sum(pageviews) AS pageviews,
       count(*) AS sessions, 0::bigint AS conversions, count(*) FILTER (WHERE events = 1)
       AS bounces, 60.0 AS avg_session_duration_seconds,
       60.0 * count(*) AS total_session_duration_seconds, now() AS built_at
FROM analytics.daily_visitors GROUP BY 1, 2;
CREATE UNIQUE INDEX ON analytics.daily_site_metrics (project_id, metric_date);
CREATE TABLE analytics.daily_kpi_metrics AS
SELECT project_id, metric_date, 'signups'::text AS metric_name, 10::numeric AS metric_value,
       now() AS built_at
FROM analytics.daily_site_metrics;
CREATE UNIQUE INDEX ON analytics.daily_kpi_metrics (project_id, metric_date, metric_name);
"""
READER_PROJECT = "project_id = nullif(current_setting('lytics.project_id', true), '')::bigint"

# The read queries as they were before migration 0010 (lytics_ingest_api/routes/reads.py).
BEFORE = {
    "events/recent": (
        "SELECT message_id, type, event, anonymous_id, user_id, session_id, timestamp,"
        " received_at, url, path, referrer, source, timestamp_clamped FROM raw.events"
        " ORDER BY received_at DESC, id DESC LIMIT 20"
    ),
    "messages": (
        "SELECT id, provider AS source, delivery_id, event_type, sender, received_at, payload"
        " FROM raw.webhook_deliveries ORDER BY received_at DESC, id DESC LIMIT 50"
    ),
    "messages offset=10000": (
        "SELECT id, provider AS source, delivery_id, event_type, sender, received_at, payload"
        " FROM raw.webhook_deliveries ORDER BY received_at DESC, id DESC LIMIT 50 OFFSET 10000"
    ),
    "messages q=complained": (
        "SELECT id, provider AS source, delivery_id, event_type, sender, received_at, payload"
        " FROM raw.webhook_deliveries WHERE coalesce(payload::text, '') ILIKE '%complained%'"
        " ORDER BY received_at DESC, id DESC LIMIT 50"
    ),
    "stats (3 queries)": (
        "SELECT count(*), count(DISTINCT sender), min(received_at), max(received_at)"
        " FROM raw.webhook_deliveries;"
        " SELECT sender, count(*) AS messages FROM raw.webhook_deliveries"
        " WHERE sender IS NOT NULL GROUP BY sender ORDER BY messages DESC, sender LIMIT 10;"
        " SELECT provider, count(*) AS messages FROM raw.webhook_deliveries"
        " GROUP BY provider ORDER BY messages DESC, provider"
    ),
}


@dataclass(frozen=True)
class Figures:
    median_ms: float
    max_ms: float
    status: set[int]


def timed(call: Callable[[], int], calls: int, warmup: int = 3) -> Figures:
    for _ in range(warmup):
        call()
    times, statuses = [], set()
    for _ in range(calls):
        started = time.perf_counter()
        statuses.add(call())
        times.append((time.perf_counter() - started) * 1000)
    return Figures(statistics.median(times), max(times), statuses)


def load(url: str, args: argparse.Namespace, now: datetime) -> list[int]:
    start = now - timedelta(days=args.days)
    span = timedelta(days=args.days)
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        ids = [
            int(
                conn.execute(
                    "INSERT INTO app.projects (slug, name) VALUES (%s, %s) RETURNING id",
                    (slug, slug),
                ).fetchone()[0]
            )  # type: ignore[index]
            for slug, _ in PROJECTS
        ]
        started = time.perf_counter()
        chunk = 1_000_000
        for first in range(1, args.events + 1, chunk):
            conn.execute(
                EVENTS,
                {
                    "projects": ids,
                    "visitors": args.events // 20,
                    "start": start,
                    "n": args.events,
                    "span": span,
                    "first": first,
                    "last": min(first + chunk - 1, args.events),
                },
            )
        events_s = time.perf_counter() - started
        for project, n in ((ids[0], args.deliveries), (ids[1], args.deliveries // 10)):
            conn.execute(
                DELIVERIES,
                {"project": project, "start": start, "n": n, "span": span, "senders": args.senders},
            )
        deliveries_s = time.perf_counter() - started - events_s
        conn.execute(MARTS)
        for table in (
            "daily_visitors",
            "daily_visitor_recency",
            "daily_site_metrics",
            "daily_kpi_metrics",
        ):
            conn.execute(f"ALTER TABLE analytics.{table} ENABLE ROW LEVEL SECURITY")
            conn.execute(f"GRANT SELECT ON analytics.{table} TO lytics_reader")
            conn.execute(
                f"CREATE POLICY reader_own_project ON analytics.{table} FOR SELECT"
                f" TO lytics_reader USING ({READER_PROJECT})"
            )
        marts_s = time.perf_counter() - started - events_s - deliveries_s
        conn.execute("VACUUM ANALYZE")
    print(
        f"loaded {args.events:,} events in {events_s:.0f} s, "
        f"{args.deliveries + args.deliveries // 10:,} deliveries in {deliveries_s:.0f} s, "
        f"marts in {marts_s:.0f} s, then VACUUM ANALYZE"
    )
    return ids


def before(url: str, project: int, calls: int) -> dict[str, Figures]:
    out = {}
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        conn.execute("SET ROLE lytics_reader")
        conn.execute("SELECT set_config('lytics.project_id', %s, false)", (str(project),))
        for name, query in BEFORE.items():

            def call(query: str = query) -> int:
                for statement in query.split(";"):
                    conn.execute(statement.encode()).fetchall()
                return 200

            out[name] = timed(call, calls, warmup=1)
    return out


def ingest_rate(url: str, project: int, rows: int, table: str) -> float:
    """Events per second COPYed into `table`, 500 rows and one commit at a time."""
    run = uuid.uuid4().hex[:8]
    payload = json.dumps({"type": "track", "event": "Bench", "properties": {"path": "/"}})
    with psycopg.connect(libpq_dsn(url)) as conn:
        started = time.perf_counter()
        for first in range(0, rows, 500):
            buffer = io.StringIO()
            for n in range(first, min(first + 500, rows)):
                now = datetime.now(UTC).isoformat()
                buffer.write(
                    f"{project}\t{run}-{n}\ttrack\tBench\tv{n}\t{now}\t{now}\t/\tsegment\t"
                    f"{payload}\n"
                )
            with conn.cursor().copy(
                f"COPY {table} (project_id, message_id, type, event, anonymous_id,"
                " timestamp, received_at, path, source, payload) FROM STDIN"
            ) as copy:
                copy.write(buffer.getvalue())
            conn.commit()
        return rows / (time.perf_counter() - started)


def index_cost(url: str, project: int, args: argparse.Namespace) -> str:
    """What the read index costs ingest: two copies of raw.events holding the same rows,
    one without the index, COPYed into alternately (the machine's load drifts)."""
    copies = {"without": "public.events_without", "with": "public.events_with"}
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        for table in copies.values():
            conn.execute(f"CREATE TABLE {table} (LIKE raw.events INCLUDING ALL)")
            conn.execute(
                f"INSERT INTO {table} OVERRIDING SYSTEM VALUE"
                " SELECT * FROM raw.events ORDER BY id LIMIT %s",
                (args.ingest_prefill,),
            )
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), (SELECT max(id) FROM {table}))",
                (table,),
            )
        (index,) = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            " AND tablename = 'events_without' AND indexdef LIKE '%(project_id, received_at, id)'"
        ).fetchone() or (None,)
        conn.execute(f"DROP INDEX public.{index}")
        conn.execute("VACUUM ANALYZE public.events_without, public.events_with")
    seconds = dict.fromkeys(copies, 0.0)
    for round_ in range(args.ingest_rounds):
        for name in sorted(copies, reverse=bool(round_ % 2)):
            rate = ingest_rate(url, project, args.ingest_rows, copies[name])
            seconds[name] += args.ingest_rows / rate
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        conn.execute("DROP TABLE public.events_without, public.events_with")
    rows = args.ingest_rows * args.ingest_rounds
    without, with_ = rows / seconds["without"], rows / seconds["with"]
    return (
        f"ingest cost of the read index: COPY in 500-row commits into copies of raw.events"
        f" holding {args.ingest_prefill:,} rows, {args.ingest_rounds} alternating rounds of"
        f" {args.ingest_rows:,}: {without:,.0f} rows/s without it, {with_:,.0f} rows/s with it"
        f" ({(with_ / without - 1) * 100:+.1f} %)"
    )


def _thousands(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else f"{n:,}"


def endpoints(url: str, project: int, args: argparse.Namespace) -> dict[str, str]:
    # Deep cursors: 100,000 events and 10,000 deliveries back at full size, and no
    # further than a quarter of the data at a smaller one (the project has 70 % of the
    # events and all of the measured deliveries), so the row is always there.
    event_depth = min(100_000, args.events // 4)
    delivery_depth = min(10_000, args.deliveries // 4)
    with psycopg.connect(libpq_dsn(url)) as conn:

        def position(query: str, depth: int) -> str:
            row = conn.execute(query, (project, depth)).fetchone()
            assert row is not None
            return encode(Position(row[0], row[1]))

        deep_event = position(
            "SELECT received_at, id FROM raw.events WHERE project_id = %s"
            " ORDER BY received_at DESC, id DESC OFFSET %s LIMIT 1",
            event_depth,
        )
        deep_delivery = position(
            "SELECT received_at, id FROM raw.webhook_deliveries WHERE project_id = %s"
            " ORDER BY received_at DESC, id DESC OFFSET %s LIMIT 1",
            delivery_depth,
        )
        top, rare = conn.execute(
            "SELECT (array_agg(sender ORDER BY messages DESC))[1],"
            " (array_agg(sender ORDER BY messages))[1]"
            " FROM raw.webhook_sender_counts WHERE project_id = %s",
            (project,),
        ).fetchone() or (None, None)
        invoice = conn.execute(
            "SELECT payload #>> '{data,subject}' FROM raw.webhook_deliveries"
            " WHERE project_id = %s AND provider = 'resend' ORDER BY id OFFSET 1000 LIMIT 1",
            (project,),
        ).fetchone()
    since = (datetime.now(UTC) - timedelta(hours=6)).isoformat()
    today = datetime.now(UTC).date()
    return {
        "events/recent": "/v1/events/recent?limit=20",
        f"events/recent limit=100 cursor at {_thousands(event_depth)}": (
            f"/v1/events/recent?limit=100&cursor={deep_event}"
        ),
        "messages": "/v1/messages",
        f"messages cursor at {_thousands(delivery_depth)}": f"/v1/messages?cursor={deep_delivery}",
        "messages source=github": "/v1/messages?source=github",
        "messages from=<top sender>": f"/v1/messages?from={top}",
        "messages from=<rarest sender>": f"/v1/messages?from={rare}",
        "messages since=6h ago": f"/v1/messages?since={quote(since)}",
        "messages q=<one invoice>": f"/v1/messages?q={invoice[0] if invoice else 'x'}",
        "messages q=complained (1 %)": "/v1/messages?q=complained",
        "messages q=delivered (48 %)": "/v1/messages?q=delivered",
        "messages q=complained source=github (none)": "/v1/messages?q=complained&source=github",
        "stats": "/v1/stats",
        "dashboard/tiles (7 days)": f"/v1/dashboard/tiles?to={today}",
        "dashboard/tiles (28 days)": f"/v1/dashboard/tiles?from={today - timedelta(days=27)}",
        "email-events/summary": "/v1/email-events/summary",
        "digest/status": "/v1/digest/status",
        "exports/config": "/v1/exports/config",
        "exports/status": "/v1/exports/status",
        "github/repos": "/v1/github/repos",
    }


def explain(url: str, project: int, now: datetime) -> None:
    """EXPLAIN ANALYZE of the heavier reads, as the reader scoped to the project."""
    from lytics.metrics.tiles import SITE, VISITORS
    from lytics_ingest_api.routes import reads

    week = {"project": project, "start": now.date() - timedelta(days=6), "end": now.date()}
    month = {**week, "start": now.date() - timedelta(days=27)}
    queries = {
        "tiles: visitors, 7 days": (VISITORS, week),
        "tiles: visitors, 28 days": (VISITORS, month),
        "tiles: site, 7 days": (SITE, week),
        "recent events": (reads.RECENT_EVENTS, {"before_at": None, "before_id": None, "limit": 21}),
        "stats": (reads.STATS, {}),
    }
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        conn.execute("SET ROLE lytics_reader")
        conn.execute("SELECT set_config('lytics.project_id', %s, false)", (str(project),))
        for name, (query, params) in queries.items():
            print(f"\n-- {name}")
            plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, params).fetchall()
            print("\n".join(row[0] for row in plan))
        # Inside raw.search_webhook_deliveries (its owner's view, the same values).
        conn.execute("RESET ROLE")
        for q in ("complained", "delivered", "invoice 1000"):
            print(f"\n-- search q={q}, inside the function")
            plan = conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM raw.webhook_deliveries"
                " WHERE project_id = %s AND search_words @@ raw.webhook_search_query(%s)"
                " ORDER BY received_at DESC, id DESC LIMIT 51",
                (project, q),
            ).fetchall()
            print("\n".join(row[0] for row in plan))


def report(rows: dict[str, Figures], *, verdict: bool) -> None:
    width = max(len(name) for name in rows) + 2
    print(f"{'':{width}}{'median ms':>10}{'max ms':>10}  status")
    for name, f in rows.items():
        mark = ""
        if verdict:
            mark = "PASS" if f.median_ms <= TARGET_MS and f.max_ms <= TARGET_MS else "MISS"
            if f.median_ms <= TARGET_MS < f.max_ms:
                mark = "PASS median, MISS max"
        print(
            f"{name:{width}}{f.median_ms:>10.1f}{f.max_ms:>10.1f}  "
            f"{','.join(map(str, sorted(f.status)))}  {mark}"
        )


def run(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="lytics-reads-", dir="/tmp"))
    try:
        with scratch_database(
            os.environ.get("LYTICS_BENCH_DATABASE_URL"), folder, name_prefix="lyt_reads"
        ) as url:
            migrate.upgrade(url, BEFORE_INDEXES)
            now = datetime.now(UTC)
            ids = load(url, args, now)
            project = ids[0]

            print(f"\n== before migration 0010 (old SQL as the reader, {args.before_calls} calls)")
            report(before(url, project, args.before_calls), verdict=True)

            started = time.perf_counter()
            migrate.upgrade(url)
            print(f"\nmigration 0010 on the loaded tables: {time.perf_counter() - started:.1f} s")

            engine = create_sync_engine(url)
            with engine.begin() as conn:
                secret = api_keys.create_key(conn, project, "secret").plaintext
            engine.dispose()
            paths = endpoints(url, project, args)
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "LYTICS_SECRET_KEY": "bench-" + uuid.uuid4().hex,
                "LOG_LEVEL": "WARNING",
                "LYTICS_RATE_LIMIT_PER_SECOND": "0",
            }
            argv = [sys.executable, "-m", "lytics_ingest_api"]
            with served("api", argv, env, "/health/ready", folder) as api:
                base = f"http://127.0.0.1:{api.port}"
                headers = {"Authorization": f"Bearer {secret}"}
                results = {}
                with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                    for name, path in paths.items():
                        results[name] = timed(
                            lambda path=path: client.get(path).status_code, args.calls
                        )
            print(f"\n== after: the API, {args.calls} calls each, target {TARGET_MS:.0f} ms")
            report(results, verdict=True)
            if args.explain:
                explain(url, project, now)
            if args.ingest_rounds:
                print(f"\n{index_cost(url, ids[3], args)}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--deliveries", type=int, default=500_000)
    parser.add_argument("--senders", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--before-calls", type=int, default=3)
    parser.add_argument("--ingest-rows", type=int, default=20_000, help="per round and copy")
    parser.add_argument("--ingest-rounds", type=int, default=5, help="0: skip")
    parser.add_argument("--ingest-prefill", type=int, default=1_000_000)
    parser.add_argument("--explain", action="store_true", help="plans of the heavier reads")
    args = parser.parse_args()
    load_avg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} cores, load average {load_avg}; Postgres: "
        + (
            "LYTICS_BENCH_DATABASE_URL"
            if os.environ.get("LYTICS_BENCH_DATABASE_URL")
            else "embedded"
        )
        + f"; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    run(args)
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
