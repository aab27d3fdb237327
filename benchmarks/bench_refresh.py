"""The metrics refresh: what one new event costs in the database, beside a full-day rebuild.

Target: with 5 million events already stored for today and the day's marts built, a
refresh triggered by one new event spends <= 5 s in the database on this machine.

In one throwaway database (an embedded Postgres in a temporary folder, or a fresh
database on the server of LYTICS_BENCH_DATABASE_URL, dropped at the end):

1. N events (`--events`, default 5,000,000) received today, from midnight up to now,
   are COPYed into raw.events in arrival order: four projects (one with 70 % of the
   traffic), returning visitors (a few very busy ones), half of the visitors sending
   SDK session ids, paths drawn from a Zipf distribution ("/" the hottest), referrers,
   utm parameters on campaign landings, and 1 % of the events late (event time up to
   72 h before arrival).
2. The marts are built through the real Dagster path (the dbt multi-asset materialized as
   the job runs it, partition window and tags as the hourly schedule sets them): int_events
   first, then ANALYZE of it (what autovacuum has done by the time marts are built over a
   table that grew during the day), then every model with its tests (the tables created,
   4 days for the late events), then today's window rebuild (refresh: window): the
   full-day figure. Then VACUUM ANALYZE, as autovacuum does after such a build. (A first
   build of every model at once plans fct_sessions over an int_events without statistics:
   a nested loop that took 217 s at 200,000 events instead of 1.3 s.)
3. One new event, received now, is folded in as the raw-data sensor does it: the sensor
   (as the code location defines it) is evaluated and its run request materialized
   (refresh: new_rows, the tables built from raw.events, no tests), with dbt's saved parse
   made for the sensor's vars and this profile (as `lytics dev` prepares it on start).
   First the busiest visitor of the big project viewing "/" (the hottest path), three
   times; then a new visitor (with an SDK session id) on "/"; then 1,000 new events;
   then one event without a saved parse.

"In the database" is the sum of dbt's per-node execution times (run_results.json of the
run's own dbt target folder). The script also prints the SQL statements' share of it
(dbt's log times every statement), the run's wall time and where the rest goes (Dagster,
dbt's start-up and parse, the partition metadata queries), the slowest nodes and
statements, and the bytes on disk per event of int_events and raw.events. When the
target is missed (or with `--explain`) it replays the statements of the last one-event
refresh's slowest nodes in a transaction that it rolls back, with EXPLAIN (ANALYZE,
BUFFERS) on each node's slowest statement, and again with the models' last-build
subqueries replaced by their values (what the planner could do with a literal).

dbt's per-invocation folders go to a private DBT_TARGET_PATH in the work folder, not to
dbt_project/target; `--keep` keeps that folder and the database.

Run: `flock /tmp/lytics-bench.lock .venv/bin/python benchmarks/bench_refresh.py
[--events 5000000] [--explain] [--keep]`. Develop with `--events 200000`. The script
reports; it does not fail on a missed target.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import itertools
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# As an activated virtualenv: dagster-dbt runs `dbt` by name, from PATH.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])

from benchmarks.scratch_database import scratch_database  # noqa: E402
from lytics.warehouse import migrate  # noqa: E402
from lytics.warehouse.urls import (  # noqa: E402
    dbt_env,
    libpq_dsn,
)

TARGET_S = 5.0
NODES = "dbt: hooks and nodes (two threads)"

# --------------------------------------------------------------------------------------
# The workload
# --------------------------------------------------------------------------------------

# slug, share of the traffic, host
PROJECTS = (
    ("bench-shop", 0.70, "shop.example.com"),
    ("bench-docs", 0.15, "docs.example.com"),
    ("bench-blog", 0.10, "blog.example.com"),
    ("bench-status", 0.05, "status.example.com"),
)
CONVERSIONS = ["Signed Up", "Purchase"]
TRACKS = (
    ("Clicked CTA", 40),
    ("Searched", 25),
    ("Played Video", 20),
    ("Added to Cart", 10),
    ("Signed Up", 3),
    ("Purchase", 2),
)
SEARCH_HOSTS = (
    ("https://www.google.com/search?q=analytics", 30),
    ("https://www.bing.com/search?q=analytics", 4),
    ("https://duckduckgo.com/", 3),
    ("https://t.co/aB3xY9", 4),
    ("https://www.facebook.com/", 3),
    ("https://www.linkedin.com/feed/", 2),
    ("https://news.ycombinator.com/item?id=4242", 2),
    ("https://www.reddit.com/r/selfhosted/", 2),
)
# Landings without a referrer (direct), then the search and social hosts, then a long
# tail of blogs and forums.
DIRECT_SHARE = 0.35
TAIL_HOSTS = 300
UTM = (
    ("newsletter", "email", "weekly"),
    ("google", "cpc", "brand"),
    ("facebook", "paid-social", "spring-sale"),
    ("twitter", "social", "launch"),
    ("partner-acme", "referral", "bundle"),
)
UTM_SHARE = 0.12
USER_AGENTS = tuple(
    f"Mozilla/5.0 ({os_}) AppleWebKit/537.36 (KHTML, like Gecko) {browser}"
    for os_ in (
        "X11; Linux x86_64",
        "Windows NT 10.0; Win64; x64",
        "Macintosh; Intel Mac OS X 14_5",
        "iPhone; CPU iPhone OS 17_5 like Mac OS X",
    )
    for browser in ("Chrome/126.0.0.0 Safari/537.36", "Version/17.5 Safari/605.1.15")
)
PATHS_PER_PROJECT = 3000
ZIPF_S = 1.2
NEW_VISITOR_SHARE = 0.55  # of sessions; the others return, the earliest visitors most often
LATE_SHARE = 0.01
LATE_MAX_S = 72 * 3600

COLUMNS = (
    "project_id",
    "message_id",
    "type",
    "event",
    "anonymous_id",
    "user_id",
    "session_id",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "url",
    "path",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "ip",
    "user_agent",
    "source",
    "payload",
)
COPY = f"COPY raw.events ({', '.join(COLUMNS)}) FROM STDIN"
NULL = "\\N"


def _paths() -> list[str]:
    sections = ("blog", "docs", "product", "pricing", "help", "changelog", "careers")
    paths = ["/", "/pricing", "/docs", "/signup", "/login", "/features", "/blog"]
    n = 0
    while len(paths) < PATHS_PER_PROJECT:
        paths.append(f"/{sections[n % len(sections)]}/page-{n}")
        n += 1
    return paths


PATHS = _paths()
PATH_WEIGHTS = list(itertools.accumulate(1 / rank**ZIPF_S for rank in range(1, len(PATHS) + 1)))
REFERRERS = [url for url, _ in SEARCH_HOSTS] + [
    f"https://blog{i}.example.net/posts/{i}" for i in range(TAIL_HOSTS)
]
REFERRER_WEIGHTS = list(
    itertools.accumulate([w for _, w in SEARCH_HOSTS] + [8 / (i + 1) for i in range(TAIL_HOSTS)])
)
TRACK_NAMES = [name for name, _ in TRACKS]
TRACK_WEIGHTS = list(itertools.accumulate(w for _, w in TRACKS))


def _pick(rng: random.Random, items: Sequence[Any], cumulative: Sequence[float]) -> Any:
    return items[bisect.bisect(cumulative, rng.random() * cumulative[-1])]


def visitor_id(number: int) -> str:
    """A stable UUID-shaped anonymous id for visitor `number`."""
    return str(uuid.UUID(int=(number * 0x9E3779B97F4A7C15F39CC0605CEDC835) % (1 << 128)))


def uses_sdk_sessions(number: int) -> bool:
    return number % 2 == 0


def user_of(number: int) -> str | None:
    return f"user-{number}" if number % 7 == 3 else None


def stamp(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat()


@dataclass
class Sessions:
    """Pass 1: sessions (project, visitor, referrer, utm) and their events' arrival times."""

    project: array = field(default_factory=lambda: array("b"))
    visitor: array = field(default_factory=lambda: array("q"))
    referrer: array = field(default_factory=lambda: array("h"))  # -1: direct
    utm: array = field(default_factory=lambda: array("b"))  # -1: none
    event_session: array = field(default_factory=lambda: array("q"))
    event_position: array = field(default_factory=lambda: array("h"))
    keys: list[int] = field(default_factory=list)  # arrival (us) << shift | event index


def _session_length(rng: random.Random) -> int:
    if rng.random() < 0.25:
        return 1  # a bounce
    return min(40, 2 + int(rng.expovariate(1 / 4)))


def _gap(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.85:
        return 5 + rng.expovariate(1 / 60)
    if roll < 0.95:
        return rng.uniform(300, 1700)
    return rng.uniform(31 * 60, 120 * 60)  # a new inferred session for SDK-less visitors


def plan_sessions(events: int, span_us: int, rng: random.Random) -> tuple[Sessions, int]:
    """Sessions until `events` events arrive inside [0, span_us); returns them and the shift."""
    out = Sessions()
    shift = max(events, 1).bit_length()
    visitors: list[list[int]] = [[] for _ in PROJECTS]
    shares = list(itertools.accumulate(share for _, share, _ in PROJECTS))
    next_visitor = made = 0
    while made < events:
        project = bisect.bisect(shares, rng.random() * shares[-1])
        seen = visitors[project]
        if not seen or rng.random() < NEW_VISITOR_SHARE:
            next_visitor += 1
            seen.append(next_visitor)
            visitor = next_visitor
        else:
            visitor = seen[int(len(seen) * rng.random() ** 2)]
        session = len(out.project)
        out.project.append(project)
        out.visitor.append(visitor)
        out.referrer.append(
            -1
            if rng.random() < DIRECT_SHARE
            else bisect.bisect(REFERRER_WEIGHTS, rng.random() * REFERRER_WEIGHTS[-1])
        )
        out.utm.append(rng.randrange(len(UTM)) if rng.random() < UTM_SHARE else -1)
        at = rng.random() * span_us
        for position in range(min(_session_length(rng), events - made)):
            if at >= span_us:
                break
            out.event_session.append(session)
            out.event_position.append(position)
            out.keys.append((int(at) << shift) | made)
            made += 1
            at += _gap(rng) * 1e6
    out.keys.sort()
    return out, shift


@dataclass(frozen=True)
class EventSpec:
    project_id: int
    host: str
    visitor: int
    session_id: str | None
    event_at_us: int
    received_us: int
    page: bool
    name: str | None
    path: str
    referrer: str | None
    utm: int
    anonymous_id: str | None = None  # overrides the one derived from `visitor`


def copy_line(e: EventSpec, message_id: str) -> str:
    """One raw.events row in COPY text format (no value holds a tab, newline or backslash)."""
    anonymous_id = e.anonymous_id or visitor_id(e.visitor)
    user_id = user_of(e.visitor) if e.visitor >= 0 else None
    at, received = stamp(e.event_at_us), stamp(e.received_us)
    sent = stamp(e.received_us - 40_000)
    utm = UTM[e.utm] if e.utm >= 0 else None
    query = f"?utm_source={utm[0]}&utm_medium={utm[1]}&utm_campaign={utm[2]}" if utm else ""
    url = f"https://{e.host}{e.path}{query}"
    user_agent = USER_AGENTS[e.visitor % len(USER_AGENTS)]
    ip = f"10.{e.visitor >> 16 & 255}.{e.visitor >> 8 & 255}.{e.visitor & 255}"
    kind = "page" if e.page else "track"
    campaign = (
        f',"campaign":{{"source":"{utm[0]}","medium":"{utm[1]}","name":"{utm[2]}"}}' if utm else ""
    )
    ref = f'"{e.referrer}"' if e.referrer else "null"
    session = f',"sessionId":"{e.session_id}"' if e.session_id else ""
    name = f'"{e.name}"' if e.name else "null"
    user = f'"{user_id}"' if user_id else "null"
    payload = (
        f'{{"type":"{kind}","event":{name},'
        f'"anonymousId":"{anonymous_id}","userId":{user},'
        f'"messageId":"{message_id}","timestamp":"{at}","sentAt":"{sent}",'
        f'"properties":{{"path":"{e.path}","url":"{url}","referrer":{ref},'
        f'"title":"Example - {e.path}"}},"context":{{"library":{{"name":"analytics.js",'
        f'"version":"next-1.72.0"}},"page":{{"path":"{e.path}","url":"{url}",'
        f'"referrer":{ref},"title":"Example - {e.path}"}},"userAgent":"{user_agent}",'
        f'"locale":"en-US","ip":"{ip}"{campaign}{session}}},"integrations":{{}}}}'
    )
    values = (
        str(e.project_id),
        message_id,
        kind,
        e.name or NULL,
        anonymous_id,
        user_id or NULL,
        e.session_id or NULL,
        at,
        at,
        sent,
        received,
        url,
        e.path,
        e.referrer or NULL,
        utm[0] if utm else NULL,
        utm[1] if utm else NULL,
        utm[2] if utm else NULL,
        ip,
        user_agent,
        "segment",
        payload,
    )
    return "\t".join(values) + "\n"


def events_in_arrival_order(
    plan: Sessions, shift: int, midnight_us: int, project_ids: Sequence[int], seed: int
) -> Iterator[EventSpec]:
    """Pass 2: every planned event, in arrival order, with its own attributes drawn."""
    rng = random.Random(seed)
    mask = (1 << shift) - 1
    last_path: dict[int, str] = {}
    for key in plan.keys:
        index = key & mask
        session = plan.event_session[index]
        position = plan.event_position[index]
        received = midnight_us + (key >> shift)
        project = plan.project[session]
        visitor = plan.visitor[session]
        page = position == 0 or rng.random() < 0.8
        path = _pick(rng, PATHS, PATH_WEIGHTS) if page else last_path.get(session, "/")
        if position == 0:
            ref = plan.referrer[session]
            referrer = REFERRERS[ref] if ref >= 0 else None
        else:
            referrer = f"https://{PROJECTS[project][2]}{last_path.get(session, '/')}"
        if page:
            last_path[session] = path
        late = rng.random() < LATE_SHARE
        lag = rng.uniform(60, LATE_MAX_S) * 1e6 if late else rng.uniform(0.05, 2.0) * 1e6
        yield EventSpec(
            project_id=project_ids[project],
            host=PROJECTS[project][2],
            visitor=visitor,
            session_id=f"{session:016x}{visitor:08x}" if uses_sdk_sessions(visitor) else None,
            event_at_us=received - int(lag),
            received_us=received,
            page=page,
            name=None if page else _pick(rng, TRACK_NAMES, TRACK_WEIGHTS),
            path=path,
            referrer=referrer,
            utm=plan.utm[session] if position == 0 else -1,
        )


def create_projects(conn: psycopg.Connection[Any]) -> list[int]:
    ids = []
    for slug, _, host in PROJECTS:
        row = conn.execute(
            "INSERT INTO app.projects (slug, name, settings) VALUES (%s, %s, %s) RETURNING id",
            (slug, host, json.dumps({"conversion_events": CONVERSIONS})),
        ).fetchone()
        assert row is not None
        ids.append(int(row[0]))
    return ids


def copy_events(conn: psycopg.Connection[Any], specs: Iterator[EventSpec], seed: int) -> int:
    rng = random.Random(seed)
    written = 0
    chunk: list[str] = []
    with conn.cursor().copy(COPY) as copy:
        for spec in specs:
            chunk.append(copy_line(spec, f"{rng.getrandbits(128):032x}"))
            if len(chunk) == 20_000:
                copy.write("".join(chunk))
                written += len(chunk)
                chunk = []
        copy.write("".join(chunk))
        written += len(chunk)
    return written


def load(url: str, events: int, now: datetime, seed: int = 7) -> dict[str, float]:
    """COPY `events` events received today, before `now`; VACUUM ANALYZE raw.events."""
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    # Events arrive up to a minute before the measured new ones.
    span_us = max(int((now - midnight).total_seconds() - 60) * 1_000_000, 60_000_000)
    started = time.perf_counter()
    plan, shift = plan_sessions(events, span_us, random.Random(seed))
    planned = time.perf_counter() - started
    midnight_us = int(midnight.timestamp() * 1_000_000)
    with psycopg.connect(libpq_dsn(url)) as conn:
        project_ids = create_projects(conn)
        specs = events_in_arrival_order(plan, shift, midnight_us, project_ids, seed + 1)
        written = copy_events(conn, specs, seed + 2)
        conn.commit()
    copied = time.perf_counter() - started - planned
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE raw.events")
    return {
        "events": written,
        "sessions": len(plan.project),
        "plan_s": planned,
        "copy_s": copied,
        "vacuum_s": time.perf_counter() - started - planned - copied,
        "span_h": span_us / 3.6e9,
    }


WORKLOAD_STATS = """
WITH today AS (
    SELECT * FROM raw.events
    WHERE timestamp >= %(midnight)s AND timestamp < %(midnight)s + interval '1 day'
)
SELECT
    (SELECT count(*) FROM raw.events),
    (SELECT count(*) FROM raw.events WHERE timestamp < %(midnight)s),
    (SELECT count(*) FROM today WHERE project_id = %(big)s),
    (SELECT count(DISTINCT anonymous_id) FROM today),
    (SELECT round(avg((session_id IS NOT NULL)::int), 2) FROM today),
    (SELECT count(*) FROM today WHERE project_id = %(big)s AND type = 'page' AND path = '/'),
    (SELECT count(*) FROM today WHERE project_id = %(big)s AND type = 'page')
"""

BUSIEST_VISITOR = """
SELECT anonymous_id, count(*), (array_agg(session_id ORDER BY timestamp DESC))[1]
FROM raw.events
WHERE project_id = %(big)s AND timestamp >= %(midnight)s
GROUP BY anonymous_id ORDER BY count(*) DESC LIMIT 1
"""


@dataclass(frozen=True)
class Workload:
    big_project: int
    busiest: str  # anonymous id
    busiest_events: int
    busiest_session: str | None
    text: str


def describe_workload(url: str, today: date) -> Workload:
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
    with psycopg.connect(libpq_dsn(url)) as conn:
        big_row = conn.execute(
            "SELECT id FROM app.projects WHERE slug = %s", (PROJECTS[0][0],)
        ).fetchone()
        assert big_row is not None
        params = {"midnight": midnight, "big": big_row[0]}
        row = conn.execute(WORKLOAD_STATS, params).fetchone()
        busiest = conn.execute(BUSIEST_VISITOR, params).fetchone()
    assert row is not None
    assert busiest is not None
    total, before_today, big, visitors, with_sid, home, pageviews = row
    text = (
        f"{total:,} events in raw.events ({before_today:,} of them late, for earlier days); "
        f"today: {visitors:,} visitors, share with an SDK session id {with_sid}; the big "
        f"project has {big:,} events, {pageviews:,} pageviews of which {home:,} of '/'; "
        f"its busiest visitor has {busiest[1]:,} events today"
        + (" (with SDK session ids)" if busiest[2] else " (without SDK session ids)")
    )
    return Workload(int(big_row[0]), str(busiest[0]), int(busiest[1]), busiest[2], text)


def insert_events(url: str, specs: Sequence[EventSpec]) -> int:
    """New events, received now, as the API writes them; returns the largest id."""
    rng = random.Random()
    with psycopg.connect(libpq_dsn(url)) as conn:
        with conn.cursor().copy(COPY) as copy:
            for spec in specs:
                copy.write(copy_line(spec, f"{rng.getrandbits(128):032x}"))
        conn.commit()
        row = conn.execute("SELECT max(id) FROM raw.events").fetchone()
    assert row is not None
    return int(row[0])


def now_us() -> int:
    return int(time.time() * 1_000_000)


def hot_event(workload: Workload) -> EventSpec:
    """The worst case: the big project's busiest visitor views "/" (in their last session)."""
    at = now_us()
    return EventSpec(
        project_id=workload.big_project,
        host=PROJECTS[0][2],
        visitor=-1,
        anonymous_id=workload.busiest,
        session_id=workload.busiest_session,
        event_at_us=at - 300_000,
        received_us=at,
        page=True,
        name=None,
        path="/",
        referrer=None,
        utm=-1,
    )


def new_visitor_event(workload: Workload) -> EventSpec:
    at = now_us()
    return EventSpec(
        project_id=workload.big_project,
        host=PROJECTS[0][2],
        visitor=-1,
        anonymous_id=str(uuid.uuid4()),
        session_id=uuid.uuid4().hex,
        event_at_us=at - 300_000,
        received_us=at,
        page=True,
        name=None,
        path="/",
        referrer=REFERRERS[0],
        utm=-1,
    )


def many_events(url: str, today: date, count: int, seed: int = 11) -> list[EventSpec]:
    """`count` new events of today: 45 % from new visitors, the rest from visitors already
    seen today (in their last session), paths and types drawn as in the load."""
    rng = random.Random(seed)
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
    with psycopg.connect(libpq_dsn(url)) as conn:
        seen = conn.execute(
            "SELECT project_id, anonymous_id, session_id FROM raw.events TABLESAMPLE SYSTEM (2) "
            "WHERE timestamp >= %s LIMIT %s",
            (midnight, count),
        ).fetchall()
        slugs = dict(conn.execute("SELECT id, slug FROM app.projects").fetchall())
    host_of = {slug: host for slug, _, host in PROJECTS}
    hosts = {project: host_of.get(slug, PROJECTS[0][2]) for project, slug in slugs.items()}
    big = next(project for project, slug in slugs.items() if slug == PROJECTS[0][0])
    out = []
    for n in range(count):
        at = now_us()
        if rng.random() < 0.45 or not seen:
            project, anonymous, session = big, str(uuid.UUID(int=rng.getrandbits(128))), None
            if rng.random() < 0.5:
                session = f"{rng.getrandbits(64):016x}"
        else:
            project, anonymous, session = seen[n % len(seen)]
        page = rng.random() < 0.8
        out.append(
            EventSpec(
                project_id=int(project),
                host=hosts.get(project, PROJECTS[0][2]),
                visitor=-1,
                anonymous_id=str(anonymous),
                session_id=session,
                event_at_us=at - rng.randrange(50_000, 2_000_000),
                received_us=at,
                page=page,
                name=None if page else _pick(rng, TRACK_NAMES, TRACK_WEIGHTS),
                path=_pick(rng, PATHS, PATH_WEIGHTS),
                referrer=None,
                utm=-1,
            )
        )
    return out


def sizes(url: str) -> dict[str, tuple[int, int, int]]:
    """relation -> (rows, table bytes with TOAST, index bytes)."""
    out = {}
    with psycopg.connect(libpq_dsn(url)) as conn:
        for relation in ("raw.events", "analytics.int_events"):
            row = conn.execute(
                sql.SQL(
                    "SELECT (SELECT count(*) FROM {}), pg_table_size(%s), pg_indexes_size(%s)"
                ).format(sql.SQL(relation)),
                (relation, relation),
            ).fetchone()
            assert row is not None
            out[relation] = (int(row[0]), int(row[1]), int(row[2]))
    return out


def vacuum_analyze(url: str) -> float:
    """What autovacuum does after a build that rewrote a day: VACUUM ANALYZE every table."""
    began = time.perf_counter()
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        tables = conn.execute(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
            "WHERE schemaname IN ('raw', 'analytics')"
        ).fetchall()
        for (table,) in tables:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.SQL(table)))
    return time.perf_counter() - began


# --------------------------------------------------------------------------------------
# A run and what dbt says about it
# --------------------------------------------------------------------------------------


@dataclass
class Statement:
    node: str
    seconds: float
    text: str


@dataclass
class RunFigures:
    label: str
    ok: bool
    wall_s: float
    target: Path | None
    nodes: dict[str, float] = field(default_factory=dict)  # unique_id -> execution_time
    dbt_elapsed_s: float = 0.0  # run_results.json elapsed_time
    statements: list[Statement] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    metadata_s: float = 0.0  # the asset's partition_metadata queries, outside dbt
    sensor_s: float = 0.0

    @property
    def in_db(self) -> float:
        return sum(self.nodes.values())

    @property
    def sql_s(self) -> float:
        return sum(s.seconds for s in self.statements)

    def node_sql(self) -> dict[str, float]:
        per: dict[str, float] = defaultdict(float)
        for s in self.statements:
            per[s.node] += s.seconds
        return per


def _ts(info: dict[str, Any]) -> float:
    return datetime.fromisoformat(info["ts"].replace("Z", "+00:00")).timestamp()


def read_dbt_log(path: Path) -> tuple[list[Statement], dict[str, float]]:
    """dbt's statements (each with the time dbt measured) and the first time of each event."""
    statements: list[Statement] = []
    pending: dict[str, tuple[str, str]] = {}  # thread -> (connection, sql)
    first: dict[str, float] = {}
    last = 0.0
    for line in path.read_text().splitlines():
        try:
            event = json.loads(line)
            info, data = event["info"], event.get("data", {})
        except (ValueError, KeyError):
            continue
        first.setdefault(info["name"], _ts(info))
        last = _ts(info)
        if info["name"] == "SQLQuery":
            pending[info["thread"]] = (data.get("conn_name", ""), data.get("sql", ""))
        elif info["name"] == "SQLQueryStatus" and info["thread"] in pending:
            conn, text = pending.pop(info["thread"])
            statements.append(Statement(conn, float(data.get("elapsed", 0.0)), text))
    first["last"] = last
    return statements, first


def dbt_figures(figures: RunFigures, target_root: Path, run_id: str) -> dict[str, float]:
    """Fill `figures` from the run's own dbt target folder (lytics_dbt-<run id>-...);
    returns the first time of each of dbt's log events."""
    folders = sorted(
        target_root.glob(f"lytics_dbt-{run_id[:7]}-*"), key=lambda p: p.stat().st_mtime
    )
    if not folders:
        return {}
    figures.target = folders[-1]
    results = figures.target / "run_results.json"
    if results.exists():
        data = json.loads(results.read_text())
        figures.dbt_elapsed_s = float(data["elapsed_time"])
        figures.nodes = {r["unique_id"]: float(r["execution_time"]) for r in data["results"]}
    log = figures.target / "dbt.log"
    if not log.exists():
        return {}
    figures.statements, seen = read_dbt_log(log)
    return seen


def dagster_marks(instance: Any, run_id: str) -> dict[str, float]:
    """When the run reached each point, from its event log (epoch seconds)."""
    marks: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None:
            marks.setdefault(event.event_type_value, entry.timestamp)
        elif "Running dbt command" in (entry.user_message or ""):
            marks.setdefault("dbt command", entry.timestamp)
    return marks


def phases(
    began: float, ended: float, dagster: dict[str, float], dbt: dict[str, float]
) -> dict[str, float]:
    """Seconds between consecutive points of a run, labelled by what happens in between."""
    points = (
        ("Dagster: run set-up until the step starts (resources)", dagster.get("STEP_START")),
        ("the asset: connection, dbt invocation set-up", dagster.get("dbt command")),
        ("dbt process start: Python imports", dbt.get("MainReportVersion")),
        ("dbt: profile, adapter, saved parse (or a full parse)", dbt.get("FoundStats")),
        ("dbt: connections, relation cache until the first node", dbt.get("LogHookStartLine")),
        (NODES, dbt.get("FinishedRunningStats")),
        ("dbt: artifacts, exit", dbt.get("last")),
        ("Dagster: events after dbt's end, step end", dagster.get("STEP_SUCCESS")),
        ("Dagster: run end", ended),
    )
    out: dict[str, float] = {}
    previous = began
    for label, at in points:
        if at is not None:
            out[label] = at - previous
            previous = at
    return out


class Bench:
    """The dbt multi-asset as the code location builds it, and runs of it."""

    def __init__(self, url: str, dbt_target: Path, output: Path) -> None:
        import dagster as dg

        import lytics_assets.metrics.assets as assets_module
        from lytics_assets.metrics.definitions import build
        from tests.support.pipeline import Pipeline, dbt_assets_definition

        self.dg = dg
        self.url = url
        self.dbt_target = dbt_target
        self.output = output
        self.metadata_s = 0.0
        original = assets_module.partition_metadata

        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.metadata_s += time.perf_counter() - began

        # Instrumentation only: the asset looks the function up in its module per call.
        assets_module.partition_metadata = timed  # type: ignore[assignment]
        self.instance = dg.DagsterInstance.ephemeral()
        self.pipeline = Pipeline(url, self.instance, dbt_assets_definition())
        self.manifest = self.pipeline.assets_manifest()
        # The sensor as the code location defines it.
        self.sensor = next(s for s in build().sensors or () if s.name == "raw_data_sensor")
        self.cursor: str | None = None

    def _materialize(
        self, label: str, partition: str | None, tags: dict[str, str], selection: Any
    ) -> RunFigures:
        dg = self.dg
        self.metadata_s = 0.0
        began_epoch, began = time.time(), time.perf_counter()
        with quiet(self.output):
            result = dg.materialize(
                [self.pipeline.assets],
                instance=self.instance,
                resources=self.pipeline.resources(),
                partition_key=partition,
                tags=tags,
                selection=selection,
                raise_on_error=False,
            )
        wall = time.perf_counter() - began
        figures = RunFigures(label, bool(result.success), wall, None)
        seen = dbt_figures(figures, self.dbt_target, result.run_id)
        marks = dagster_marks(self.instance, result.run_id)
        figures.phases = phases(began_epoch, began_epoch + wall, marks, seen)
        figures.metadata_s = self.metadata_s
        return figures

    def build(self, first: date, last: date, models: Sequence[str] = ()) -> RunFigures:
        """A window rebuild of [first, last] as the hourly schedule runs it (tests included),
        or of the named models only (no tests)."""
        from lytics_assets.metrics.refresh import REFRESH_TAG
        from lytics_assets.metrics.requests import RANGE_END, RANGE_START

        dg = self.dg
        tags = {REFRESH_TAG: "window"}
        if first != last:
            tags.update({RANGE_START: first.isoformat(), RANGE_END: last.isoformat()})
        selection = (
            dg.AssetSelection.assets(
                *(dg.AssetKey(["analytics", m]) for m in models)
            ).without_checks()
            if models
            else None
        )
        label = f"window build {first}..{last}" + (f" of {', '.join(models)}" if models else "")
        return self._materialize(
            label, None if first != last else first.isoformat(), tags, selection
        )

    def start_cursor(self) -> None:
        from lytics.metrics.changes import Cursor

        with psycopg.connect(libpq_dsn(self.url)) as conn:
            row = conn.execute(
                "SELECT (SELECT coalesce(max(id), 0) FROM raw.events),"
                " (SELECT coalesce(max(id), 0) FROM raw.metrics),"
                " (SELECT coalesce(max(id), 0) FROM raw.webhook_deliveries)"
            ).fetchone()
        assert row is not None
        ids = dict(zip(("events", "metrics", "webhook_deliveries"), map(int, row), strict=True))
        self.cursor = Cursor(ids).serialize()

    def refresh(self, label: str) -> RunFigures:
        """One sensor tick and the run it requests, as the daemon would launch it."""
        from lytics_assets.resources import WarehouseResource

        dg = self.dg
        began = time.perf_counter()
        warehouse = WarehouseResource(database_url=self.url)
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"warehouse": warehouse}
        ) as context:
            outcome = self.sensor(context)
        sensor_s = time.perf_counter() - began
        if not isinstance(outcome, dg.SensorResult) or not outcome.run_requests:
            raise RuntimeError(f"the sensor requested no run: {outcome}")
        self.cursor = outcome.cursor
        request = outcome.run_requests[0]
        assert request.asset_selection is not None
        selection = dg.AssetSelection.assets(*request.asset_selection).without_checks()
        figures = self._materialize(label, request.partition_key, dict(request.tags), selection)
        figures.sensor_s = sensor_s
        return figures


@contextlib.contextmanager
def quiet(output: Path) -> Iterator[None]:
    """Dagster's and dbt's console output goes to `output` (fds 1 and 2 redirected)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with output.open("ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def save_parse(bench: Bench) -> float:
    """dbt's saved parse for the sensor's vars and this profile, in the private target
    folder dagster-dbt copies it from (what `lytics dev` prepares on start)."""
    from lytics_assets.metrics.project import DBT_DIR, NEW_ROWS_VARS

    began = time.perf_counter()
    with bench.output.open("ab") as sink:
        subprocess.run(
            [
                str(Path(sys.executable).parent / "dbt"),
                "parse",
                "--quiet",
                "--vars",
                NEW_ROWS_VARS,
                "--project-dir",
                str(DBT_DIR),
                "--profiles-dir",
                str(DBT_DIR),
            ],
            env={**os.environ, "DBT_TARGET_PATH": str(bench.dbt_target)},
            stdout=sink,
            stderr=subprocess.STDOUT,
            check=True,
        )
    return time.perf_counter() - began


# --------------------------------------------------------------------------------------
# Why a node is slow: its statements replayed, EXPLAIN (ANALYZE, BUFFERS) on the slowest
# --------------------------------------------------------------------------------------

CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")


def _strip_comment(text: str) -> str:
    body = text.strip()
    if body.startswith("/*") and "*/" in body:
        body = body[body.index("*/") + 2 :].strip()
    return body


def _without_comments(text: str) -> str:
    """The statement without its `--` comments (which may hold a `;`) and blank lines."""
    lines = []
    for line in _strip_comment(text).splitlines():
        start = line.find("--")
        while start >= 0 and line[:start].count("'") % 2:
            start = line.find("--", start + 2)
        code = line if start < 0 else line[:start]
        if code.strip():
            lines.append(code.rstrip())
    return "\n".join(lines)


def upstream_tables(manifest: dict[str, Any], node: str) -> list[tuple[str, str]]:
    """(relation, freshness column) of the incremental models `node` reads."""
    out = []
    for parent in manifest["nodes"].get(node, {}).get("depends_on", {}).get("nodes", []):
        props = manifest["nodes"].get(parent)
        if props and props["config"].get("materialized") == "incremental":
            column = "loaded_at" if props["name"] == "int_events" else "built_at"
            out.append((f'"{props["schema"]}"."{props["alias"]}"', column))
    return out


def explain(url: str, figures: RunFigures, manifest: dict[str, Any], node: str) -> list[str]:
    """Replay `node`'s statements from this run in one transaction, rolled back.

    The rows its upstream tables got in the run (their newest `built_at`/`loaded_at`) are
    first stamped with this transaction's time, so the model sees them as new again, as
    it did in the run. The slowest statement runs under EXPLAIN (ANALYZE, BUFFERS).
    """
    statements = [
        s
        for s in figures.statements
        if s.node == node and _strip_comment(s.text).upper() not in CONTROL
    ]
    if not statements:
        return [f"(no statements of {node} in the run's dbt log)"]
    slowest = max(statements, key=lambda s: s.seconds)
    out = [f"-- {node}: slowest statement ({slowest.seconds:.2f} s in the run)"]
    with psycopg.connect(libpq_dsn(url)) as conn:
        for relation, column in upstream_tables(manifest, node):
            conn.execute(
                sql.SQL("UPDATE {r} SET {c} = now() WHERE {c} = (SELECT max({c}) FROM {r})").format(
                    r=sql.SQL(relation), c=sql.Identifier(column)
                )
            )
        for s in statements:
            if s is not slowest:
                conn.execute(sql.SQL(s.text))  # type: ignore[arg-type]
                continue
            # dbt sends a delete+insert as one text: EXPLAIN each statement of it.
            for part in re.split(r";\s*\n", _without_comments(s.text)):
                if part.strip():
                    out += [" " * 4 + line for line in part.strip().splitlines() if line.strip()]
                    out += explain_part(conn, part)
        conn.rollback()
    return out


# `(select coalesce(max(built_at), '-infinity'::timestamptz) from <this>)`: the last build,
# known only when the statement runs, so the planner guesses what `loaded_at > (...)` keeps.
LAST_BUILD = re.compile(
    r"\(\s*select coalesce\(max\((\w+)\), '-infinity'::timestamptz\)\s+from\s+([^()]+?)\s*\)"
)


def with_literals(conn: psycopg.Connection[Any], text: str) -> str:
    """`text` with each last-build subquery replaced by its value now, as a literal."""

    def literal(match: re.Match[str]) -> str:
        query = f"select coalesce(max({match[1]}), '-infinity'::timestamptz)::text from {match[2]}"
        row = conn.execute(sql.SQL(query)).fetchone()  # type: ignore[arg-type]
        assert row is not None
        return f"'{row[0]}'::timestamptz"

    return LAST_BUILD.sub(literal, text)


def explain_part(conn: psycopg.Connection[Any], part: str) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of one statement (which runs, as in the build); when it
    has last-build subqueries, also of the same statement with them as literals."""
    explain_sql = "EXPLAIN (ANALYZE, BUFFERS) {}"
    conn.execute("SAVEPOINT before_explain")
    out = [str(r[0]) for r in conn.execute(sql.SQL(explain_sql).format(sql.SQL(part)))]
    variant = with_literals(conn, part)
    if variant != part:
        conn.execute("ROLLBACK TO SAVEPOINT before_explain")
        plan = conn.execute(sql.SQL(explain_sql).format(sql.SQL(variant))).fetchall()
        out += ["-- the same, the last-build subqueries replaced by their values as literals:"]
        out += [str(r[0]) for r in plan]
    return out


# --------------------------------------------------------------------------------------
# The database
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def database(server_url: str | None, folder: Path, keep: bool) -> Iterator[str]:
    """A migrated scratch database."""
    with scratch_database(server_url, folder, name_prefix="lyt_refresh", keep=keep) as url:
        migrate.upgrade(url)
        yield url


# --------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------


def short(unique_id: str) -> str:
    return unique_id.rsplit(".", maxsplit=1)[-1]


def print_run(figures: RunFigures, top: int = 5) -> None:
    sql_by_node = figures.node_sql()
    slowest = sorted(figures.nodes.items(), key=lambda kv: -kv[1])[:top]
    print(
        f"  {figures.label}: {'ok' if figures.ok else 'FAILED'}; in the database (dbt nodes) "
        f"{figures.in_db:.2f} s, of which SQL {figures.sql_s:.2f} s; run wall "
        f"{figures.wall_s:.2f} s, dbt elapsed {figures.dbt_elapsed_s:.2f} s; partition "
        f"metadata queries {figures.metadata_s:.2f} s; sensor tick {figures.sensor_s:.3f} s; "
        f"{len(figures.nodes)} nodes"
    )
    print(
        "    slowest nodes: "
        + ", ".join(f"{short(k)} {v:.2f} s (SQL {sql_by_node.get(k, 0):.2f})" for k, v in slowest)
    )


def print_phases(figures: RunFigures) -> None:
    print(f"\n  where the wall time of '{figures.label}' goes ({figures.wall_s:.2f} s):")
    for label, seconds in figures.phases.items():
        print(f"    {label:<62}{seconds:>7.2f} s")
    print(f"    (partition metadata queries, during the dbt run: {figures.metadata_s:.2f} s)")
    print(
        f"    (inside 'hooks and nodes': node execution summed {figures.in_db:.2f} s, of which "
        f"SQL {figures.sql_s:.2f} s; the rest of a node is dbt's own work: Jinja, "
        "materialization, logging)"
    )


def print_statements(figures: RunFigures, top: int = 6) -> None:
    print(f"  slowest statements of '{figures.label}':")
    for s in sorted(figures.statements, key=lambda s: -s.seconds)[:top]:
        text = " ".join(_strip_comment(s.text).split())[:110]
        print(f"    {s.seconds:>6.2f} s  {short(s.node):<22} {text}")


def summary(
    rebuild: RunFigures,
    first: RunFigures,
    hot: list[RunFigures],
    others: list[RunFigures],
    sizes_after: dict[str, dict[str, tuple[int, int, int]]],
) -> None:
    in_db = [f.in_db for f in hot]
    median, worst = statistics.median(in_db), max(in_db)
    print("\n== summary")
    verdict = "PASS" if median <= TARGET_S else "MISS"
    print(
        f"one-event refresh in the database: {median:.2f} s (target <= {TARGET_S:.0f} s: "
        f"{verdict}; median of {len(hot)}, max {worst:.2f} s; runs "
        + ", ".join(f"{v:.2f}" for v in in_db)
        + f"; run wall median {statistics.median(f.wall_s for f in hot):.2f} s)"
    )
    print(
        "  (the sum of dbt's node execution times; two threads overlap, so dbt's own span was "
        f"{statistics.median(f.phases.get(NODES, 0.0) for f in hot):.2f} s; besides, the "
        "asset's partition metadata queries spent "
        f"{statistics.median(f.metadata_s for f in hot):.2f} s in the database)"
    )
    print(
        f"full-day rebuild in the database: {rebuild.in_db:.2f} s "
        f"(run wall {rebuild.wall_s:.2f} s, tests included)"
    )
    print(
        f"first build of the marts (tables created from every row, 4 days): {first.in_db:.2f} s "
        f"(run wall {first.wall_s:.2f} s)"
    )
    for f in others:
        print(
            f"{f.label} in the database: {f.in_db:.2f} s (run wall {f.wall_s:.2f} s, "
            f"partition metadata {f.metadata_s:.2f} s)"
        )
    for moment, measured in sizes_after.items():
        parts = []
        for relation, (rows, table, indexes) in measured.items():
            parts.append(
                f"{relation} {(table + indexes) / max(rows, 1):,.0f} B/event "
                f"({table / max(rows, 1):,.0f} table + {indexes / max(rows, 1):,.0f} indexes)"
            )
        print(f"bytes on disk {moment}: " + "; ".join(parts))


def builds(bench: Bench, url: str, today: date) -> tuple[RunFigures, dict[str, Any]]:
    """The marts created, then today rebuilt from raw: the full-day figure."""
    print("\n== builds (refresh: window)")
    earliest = today - timedelta(days=3)  # the late events' days
    # int_events first, then statistics for it, as autovacuum keeps them: a first build
    # of every model in one run plans the marts over a table without any (module docstring).
    created = bench.build(earliest, today, ("stg_events", "stg_projects", "int_events"))
    print_run(created)
    measured = {"with int_events loaded once": sizes(url)}
    began = time.perf_counter()
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        conn.execute("ANALYZE analytics.int_events")
    print(f"  ANALYZE analytics.int_events: {time.perf_counter() - began:.1f} s")
    first = bench.build(earliest, today)
    print_run(first)
    rebuild = bench.build(today, today)
    print_run(rebuild)
    print_phases(rebuild)
    print_statements(rebuild)
    print(f"  then VACUUM ANALYZE of raw and analytics: {vacuum_analyze(url):.1f} s")
    measured["after today's rebuild and VACUUM"] = sizes(url)
    return rebuild, {"first": first, "sizes": measured}


def refreshes(
    bench: Bench, url: str, workload: Workload, today: date, args: argparse.Namespace
) -> tuple[list[RunFigures], list[RunFigures], list[str]]:
    print("\n== refreshes (refresh: new_rows, the sensor's run: its selection, no tests)")
    print(f"  saved parse for the sensor's vars and this profile: {save_parse(bench):.1f} s")
    bench.start_cursor()
    hot = []
    for n in range(args.repeat):
        insert_events(url, [hot_event(workload)])
        hot.append(bench.refresh(f"one event, busiest visitor on '/' #{n + 1}"))
        print_run(hot[-1])
    # The replay needs the tables as the last run left them: explain that run now.
    plans = []
    if args.explain or statistics.median(f.in_db for f in hot) > TARGET_S:
        last = hot[-1]
        for node, _ in sorted(last.node_sql().items(), key=lambda kv: -kv[1])[:3]:
            plans += ["", *explain(url, last, bench.manifest, node)]
    insert_events(url, [new_visitor_event(workload)])
    others = [bench.refresh("one event, a new visitor on '/'")]
    print_run(others[-1])
    insert_events(url, many_events(url, today, 1000))
    others.append(bench.refresh("1,000 new events"))
    print_run(others[-1])
    # What a refresh costs when the saved parse was made for another profile (or none).
    (bench.dbt_target / "partial_parse.msgpack").unlink(missing_ok=True)
    insert_events(url, [hot_event(workload)])
    others.append(bench.refresh("one event, busiest visitor, no saved parse"))
    print_run(others[-1])
    return hot, others, plans


def run(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="lytics-refresh-", dir="/tmp"))
    dbt_target = folder / "dbt-target"
    output = folder / "dagster-dbt.log"
    # dagster-dbt puts each invocation's folder under DBT_TARGET_PATH and copies the saved
    # parse from it: a private one, so the working tree's dbt_project/target is left alone.
    os.environ["DBT_TARGET_PATH"] = str(dbt_target)
    print(f"work folder: {folder} (Dagster's and dbt's output: {output.name})")
    try:
        with database(os.environ.get("LYTICS_BENCH_DATABASE_URL"), folder, args.keep) as url:
            os.environ["DATABASE_URL"] = url
            os.environ.update(dbt_env(url))
            now = datetime.now(UTC)
            loaded = load(url, args.events, now)
            print(
                f"loaded {loaded['events']:,.0f} events ({loaded['sessions']:,.0f} sessions) "
                f"received over the last {loaded['span_h']:.1f} h: planned in "
                f"{loaded['plan_s']:.0f} s, COPY {loaded['copy_s']:.0f} s, "
                f"VACUUM ANALYZE {loaded['vacuum_s']:.0f} s"
            )
            workload = describe_workload(url, now.date())
            print(workload.text)
            bench = Bench(url, dbt_target, output)
            rebuild, built = builds(bench, url, now.date())
            hot, others, plans = refreshes(bench, url, workload, now.date(), args)
            worst = max(hot, key=lambda f: f.in_db)
            print_phases(worst)
            print_phases(others[-1])
            print_statements(worst)
            summary(rebuild, built["first"], hot, others, built["sizes"])
            if plans:
                print(f"\n== EXPLAIN (ANALYZE, BUFFERS) of '{hot[-1].label}', replayed")
                print("\n".join(plans))
    finally:
        if args.keep:
            print(f"kept: {folder} (EmbeddedPostgres.in_data_dir(Path('{folder}')).start())")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="one-event refreshes (worst case)")
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN the slowest nodes even on a PASS"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    load_avg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} cores, load average {load_avg}; Postgres: "
        + (
            "LYTICS_BENCH_DATABASE_URL"
            if os.environ.get("LYTICS_BENCH_DATABASE_URL")
            else "embedded (pgserver)"
        )
        + f"; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    run(args)
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
