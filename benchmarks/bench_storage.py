"""What an event costs on disk in raw.events, before and after a schema change, in one run.

1. `--events` (500,000) realistic events, built in Python from a fixed seed: analytics.js
   page calls (~55 %, with the page fields that analytics.js repeats in `properties`,
   `userAgentData`, sometimes a campaign), track calls (~25 %, some with products),
   server-side track/identify calls carrying `context.ip` (~10 %) and `/collect` beacons
   (~10 %). Visitors, paths, referrers and user agents come from skewed pools, as on a
   real site. Each is normalized by the real normalizer (`segment_event_json`, the batch
   path, which stores the bytes as sent; `collect_event` for beacons), and a Segment
   event's stored payload is checked to be exactly the bytes sent.
   Since migration 0014 the writer stores ip and user_agent only when the payload holds
   none; the rows for revisions before it get them filled, as that code stored them.
2. One database per variant on one server (an embedded Postgres in a temporary folder,
   or fresh databases on the server of LYTICS_BENCH_DATABASE_URL, dropped at the end):
   `before` migrated to `--before` (0013), `after` to head, and any `--try NAME=SQL`
   (a database at `--before`, then SQL run on it: how candidates were compared).
3. The same rows are written into every variant's raw.events the way the writer writes
   them (`COPY raw.events ... FORMAT BINARY` with the writer's column list and types,
   autocommit, `--chunk` (500) rows per COPY), in `--rounds` (4) slices, the variants
   alternating and their order reversed every round, so both see the same machine.
   Rows/s per variant and the ratio to `before` are printed: a size win that costs
   ingest shows there.
4. VACUUM ANALYZE, then bytes per event: heap, TOAST (its table and its index), each
   index, and the total (`pg_total_relation_size`, free space and visibility maps too);
   the average stored size of each column; how many payloads are compressed.
5. Context: reading every payload (as text, as an export does, and one field of it, as
   privacy's identity lookup does), `--scans` (3) times per variant, alternately.

Run: `flock /tmp/lytics-bench.lock .venv/bin/python benchmarks/bench_storage.py`
(~3 min on a 2-core machine). The embedded Postgres (pgserver) is built without lz4;
to compare with it, point LYTICS_BENCH_DATABASE_URL at a server that has it (Debian's).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.scratch_database import scratch_database  # noqa: E402
from lytics.warehouse import migrate  # noqa: E402
from lytics.warehouse.urls import libpq_dsn, render, with_driver  # noqa: E402
from lytics_ingest_api.events.jsonb_copy import JsonTextBinaryDumper  # noqa: E402
from lytics_ingest_api.events.normalize import (  # noqa: E402
    EventRow,
    RequestContext,
    collect_event,
    segment_event_json,
)
from lytics_ingest_api.events.writer import COLUMNS, COPY_EVENTS, DIRECT_TYPES  # noqa: E402

PROJECT_ID = 1
SITE = "https://shop.example.com"
# Real browsers' strings, most common first (the pool is drawn from with a skew).
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.0.0 Safari/537.36",
)
SECTIONS = ("products", "blog", "docs", "pricing", "account", "cart", "checkout", "help")
REFERRERS = (
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://t.co/",
    "https://news.ycombinator.com/",
)
CAMPAIGNS = (
    ("newsletter", "email", "spring-sale"),
    ("google", "cpc", "brand-search"),
    ("twitter", "social", "launch-week"),
)
TRACKS = ("Product Viewed", "Product Added", "Signed Up", "Clicked CTA", "Order Completed")


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventSource:
    """Events as SDKs and beacons send them: JSON bytes, reproducible from a seed."""

    def __init__(self, seed: int, visitors: int = 50_000) -> None:
        self.rng = random.Random(seed)
        self.visitors = [str(uuid.UUID(int=self.rng.getrandbits(128))) for _ in range(visitors)]
        self.ips = [
            f"{self.rng.randint(1, 223)}.{self.rng.randint(0, 255)}."
            f"{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"
            for _ in range(visitors // 2)
        ]
        self.paths = [
            f"/{self.rng.choice(SECTIONS)}/{self.rng.choice(('', 'item-'))}{n}"
            for n in range(2_000)
        ]

    def _skewed(self, pool: Sequence[str], power: float = 2.0) -> str:
        return pool[int(len(pool) * self.rng.random() ** power)]

    def _page(self) -> dict[str, Any]:
        path = self._skewed(self.paths)
        search = f"?ref=nav&variant={self.rng.randint(1, 9)}" if self.rng.random() < 0.2 else ""
        roll = self.rng.random()
        if roll < 0.4:
            referrer = SITE + self._skewed(self.paths)
        elif roll < 0.75:
            referrer = self.rng.choice(REFERRERS)
        else:
            referrer = ""
        title = path.strip("/").replace("/", " · ").replace("-", " ").title() + " | Example Shop"
        return {
            "path": path,
            "referrer": referrer,
            "search": search,
            "title": title,
            "url": SITE + path + search,
        }

    def _context(self, page: dict[str, Any], agent: str) -> dict[str, Any]:
        mobile = "Mobile" in agent
        context: dict[str, Any] = {
            "library": {"name": "analytics.js", "version": "npm:next-1.72.0"},
            "locale": self.rng.choice(("en-US", "en-GB", "de-DE", "fr-FR")),
            "page": page,
            "userAgent": agent,
            "userAgentData": {
                "brands": [
                    {"brand": "Not/A)Brand", "version": "8"},
                    {"brand": "Chromium", "version": "126"},
                    {"brand": "Google Chrome", "version": "126"},
                ],
                "mobile": mobile,
                "platform": "Android" if mobile else "Windows",
            },
            "timezone": self.rng.choice(("America/New_York", "Europe/Berlin", "Europe/London")),
        }
        if self.rng.random() < 0.15:
            source, medium, name = self.rng.choice(CAMPAIGNS)
            context["campaign"] = {"source": source, "medium": medium, "name": name}
        return context

    def _browser(self, at: datetime) -> dict[str, Any]:
        page = self._page()
        agent = self._skewed(USER_AGENTS)
        anonymous = self._skewed(self.visitors)
        common = {
            "anonymousId": anonymous,
            "context": self._context(page, agent),
            "messageId": f"ajs-next-{uuid.UUID(int=self.rng.getrandbits(128)).hex}",
            "originalTimestamp": _stamp(at - timedelta(milliseconds=120)),
            "sentAt": _stamp(at - timedelta(milliseconds=40)),
            "integrations": {},
        }
        if self.rng.random() < 0.3:
            common["userId"] = f"user-{self.rng.randint(1, 20_000)}"
        if self.rng.random() < 0.7:
            return {"type": "page", "properties": dict(page), **common}
        event = self.rng.choice(TRACKS)
        properties: dict[str, Any] = {"category": page["path"].split("/")[1]}
        if event.startswith("Product") or event == "Order Completed":
            properties.update(
                product_id=f"sku-{self.rng.randint(1, 5000)}",
                price=round(self.rng.uniform(5, 300), 2),
                currency="USD",
            )
            if event == "Order Completed":
                # Segment's e-commerce spec: whole product objects. Most orders are small,
                # a few are large (the payloads above ~2 KB that Postgres compresses).
                properties["products"] = [
                    self._product() for _ in range(1 + int(24 * self.rng.random() ** 4))
                ]
        return {"type": "track", "event": event, "properties": properties, **common}

    def _product(self) -> dict[str, Any]:
        sku = self.rng.randint(1, 5000)
        section = self.rng.choice(SECTIONS)
        return {
            "product_id": f"prod-{sku}",
            "sku": f"sku-{sku}",
            "name": f"{section.title()} item {sku}",
            "category": section,
            "price": round(self.rng.uniform(5, 300), 2),
            "quantity": self.rng.randint(1, 3),
            "url": f"{SITE}/{section}/item-{sku}",
            "image_url": f"https://cdn.example.com/img/{sku}.jpg",
        }

    def _server(self, at: datetime) -> dict[str, Any]:
        user = f"user-{self.rng.randint(1, 20_000)}"
        context = {
            "library": {"name": "analytics-node", "version": "2.1.2"},
            "ip": self._skewed(self.ips),
            "userAgent": self._skewed(USER_AGENTS),
        }
        if self.rng.random() < 0.3:
            return {
                "type": "identify",
                "userId": user,
                "traits": {
                    "email": f"{user}@example.org",
                    "plan": self.rng.choice(("free", "pro", "team")),
                    "createdAt": _stamp(at - timedelta(days=self.rng.randint(1, 900))),
                },
                "context": context,
                "messageId": f"node-{uuid.UUID(int=self.rng.getrandbits(128))}",
                "timestamp": _stamp(at),
            }
        return {
            "type": "track",
            "event": self.rng.choice(("Subscription Renewed", "Invoice Paid", "API Called")),
            "userId": user,
            "properties": {"plan": "pro", "amount": self.rng.randint(10, 500)},
            "context": context,
            "messageId": f"node-{uuid.UUID(int=self.rng.getrandbits(128))}",
            "timestamp": _stamp(at),
        }

    def _beacon(self, at: datetime) -> dict[str, Any]:
        page = self._page()
        beacon: dict[str, Any] = {
            "eventType": "pageview" if self.rng.random() < 0.8 else "click",
            "visitorId": self._skewed(self.visitors),
            "sessionId": f"s-{self.rng.getrandbits(48):x}",
            "siteId": "shop",
            "url": page["url"],
            "path": page["path"],
            "referrer": page["referrer"],
            "userAgent": self._skewed(USER_AGENTS),
            "timestamp": int(at.timestamp() * 1000),
        }
        if self.rng.random() < 0.15:
            source, medium, name = self.rng.choice(CAMPAIGNS)
            beacon["attribution"] = {
                "utmParams": {"utm_source": source, "utm_medium": medium, "utm_campaign": name}
            }
        return beacon

    def event(self, at: datetime) -> tuple[str, bytes]:
        """('segment' or 'collect', the body's bytes)."""
        roll = self.rng.random()
        if roll < 0.8:
            return "segment", msgspec.json.encode(self._browser(at))
        if roll < 0.9:
            return "segment", msgspec.json.encode(self._server(at))
        return "collect", msgspec.json.encode(self._beacon(at))


def normalized_rows(
    count: int, seed: int, start: datetime, span: timedelta
) -> list[tuple[Any, ...]]:
    """`count` rows as the real normalizer makes them, in the writer's COPY column order."""
    source = EventSource(seed)
    rows = []
    step = span / max(count, 1)
    for n in range(count):
        at = start + step * n
        kind, data = source.event(at)
        ctx = RequestContext(
            project_id=PROJECT_ID,
            received_at=at,
            source=kind,
            max_event_bytes=32 * 1024,
            max_future=timedelta(hours=23),
            ip=source.ips[n % len(source.ips)],  # the request's address
            user_agent=None,
        )
        row: EventRow
        if kind == "segment":
            row = segment_event_json(data, ctx)
            if row.payload.encode() != data:
                raise RuntimeError("the normalizer changed a payload: rows would not be as sent")
        else:
            row = collect_event(msgspec.json.decode(data), ctx)
        rows.append(tuple(getattr(row, name) for name in COLUMNS))
    return rows


# --------------------------------------------------------------------------------------
# Variants, loading, measuring
# --------------------------------------------------------------------------------------


@dataclass
class Variant:
    name: str
    dsn: str
    revision: str
    copy_seconds: list[float]
    scan_seconds: list[float]


def _connect(dsn: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)
    # The payload is JSON text already, sent as jsonb's binary form (the writer's dumper).
    conn.adapters.register_dumper(None, JsonTextBinaryDumper)
    return conn


def as_before_0014(head_dsn: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows as the writer stored them before migration 0014: ip and user_agent filled
    with the event's values, asked of 0014's own functions (the one statement of the rule)."""
    at = {name: COLUMNS.index(name) for name in ("source", "payload", "ip", "user_agent")}
    values: list[tuple[str | None, str | None]] = []
    with psycopg.connect(head_dsn) as conn:
        for first in range(0, len(rows), 10_000):
            part = rows[first : first + 10_000]
            columns = [[row[at[name]] for row in part] for name in at]
            values += conn.execute(
                "SELECT raw.event_ip(s, p::jsonb, i), raw.event_user_agent(s, p::jsonb, u)"
                " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[])"
                " WITH ORDINALITY AS t(s, p, i, u, n) ORDER BY n",
                columns,
            ).fetchall()
    before = []
    for row, (ip, user_agent) in zip(rows, values, strict=True):
        old = list(row)
        old[at["ip"]], old[at["user_agent"]] = ip, user_agent
        before.append(tuple(old))
    return before


def copy_plan(dsn: str) -> tuple[str, list[int], list[str]]:
    """The writer's COPY for this variant's raw.events: its statement, the row positions
    it sends and their binary types. The writer's own columns and types where the table
    is as the writer expects; a `--try` variant may drop columns (they are left out) or
    hold the payload as `json`, whose binary form is plain text."""
    with psycopg.connect(dsn) as conn:
        found = dict(
            conn.execute(
                "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute"
                " WHERE attrelid = 'raw.events'::regclass AND attnum > 0 AND NOT attisdropped"
            ).fetchall()
        )
    if list(COLUMNS) == [c for c in COLUMNS if c in found] and found["payload"] == "jsonb":
        return COPY_EVENTS, list(range(len(COLUMNS))), DIRECT_TYPES
    positions = [i for i, c in enumerate(COLUMNS) if c in found]
    types = ["text" if found[COLUMNS[i]] == "json" else DIRECT_TYPES[i] for i in positions]
    names = ", ".join(COLUMNS[i] for i in positions)
    return f"COPY raw.events ({names}) FROM STDIN (FORMAT BINARY)", positions, types


def copy_rows(dsn: str, rows: Sequence[tuple[Any, ...]], chunk: int) -> float:
    """Seconds to COPY the rows as the writer does: one autocommit COPY per chunk."""
    statement, positions, types = copy_plan(dsn)
    if len(positions) < len(COLUMNS):
        rows = [tuple(row[i] for i in positions) for row in rows]
    with _connect(dsn) as conn:
        started = time.perf_counter()
        for first in range(0, len(rows), chunk):
            with conn.cursor().copy(statement) as copy:
                copy.set_types(types)
                for row in rows[first : first + chunk]:
                    copy.write_row(row)
        return time.perf_counter() - started


# How the payload's readers use it: an export writes it as text (lytics/exports), privacy
# looks fields up in it (lytics/privacy/identities.py). Both decompress a compressed one.
SCANS = (
    "SELECT sum(octet_length(payload::text)) FROM raw.events",
    "SELECT count(*) FROM raw.events WHERE payload -> 'context' ->> 'ip' = '0.0.0.0'",
)


def scan_payloads(dsn: str) -> float:
    with _connect(dsn) as conn:
        started = time.perf_counter()
        for statement in SCANS:
            conn.execute(statement).fetchone()
        return time.perf_counter() - started


@dataclass(frozen=True)
class Sizes:
    rows: int
    heap: int
    toast: int
    maps: int
    total: int
    indexes: dict[str, int]
    columns: dict[str, float]  # average stored bytes per row
    row_bytes: float  # average tuple length (header, null bitmap, alignment, data)
    compressed: int  # payloads stored compressed (inline or in TOAST)
    settings: str


SIZES = """
SELECT (SELECT count(*) FROM raw.events),
       pg_relation_size(c.oid),
       coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
       pg_relation_size(c.oid, 'fsm') + pg_relation_size(c.oid, 'vm'),
       pg_total_relation_size(c.oid),
       coalesce(array_to_string(c.reloptions, ', '), '')
FROM pg_class c WHERE c.oid = 'raw.events'::regclass
"""
INDEXES = """
SELECT indexrelid::regclass::text, pg_relation_size(indexrelid)
FROM pg_index WHERE indrelid = 'raw.events'::regclass ORDER BY 1
"""
STORAGE = """
SELECT string_agg(attname || ' ' || attstorage::text
                  || coalesce(nullif(' ' || attcompression::text, ' '), ''), ', ' ORDER BY attnum)
FROM pg_attribute
WHERE attrelid = 'raw.events'::regclass AND attnum > 0 AND NOT attisdropped AND attlen = -1
"""


def sizes(dsn: str) -> Sizes:
    with _connect(dsn) as conn:
        conn.execute("VACUUM ANALYZE raw.events")
        rows, heap, toast, maps, total, options = conn.execute(SIZES).fetchone() or ()
        indexes = dict(conn.execute(INDEXES).fetchall())
        present = {
            name
            for (name,) in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'raw.events'::regclass"
                " AND attnum > 0 AND NOT attisdropped"
            ).fetchall()
        }
        # A NULL takes no bytes in the row (a bit in the null bitmap), nor does a dropped column.
        averages = ", ".join(
            f"avg(coalesce(pg_column_size({name}), 0))" if name in present else "0"
            for name in ("id", *COLUMNS)
        )
        values = conn.execute(f"SELECT {averages}, avg(pg_column_size(e.*)) FROM raw.events e")
        *per_column, row_bytes = values.fetchone() or ()
        compressed = (
            conn.execute(
                "SELECT count(*) FROM raw.events WHERE pg_column_compression(payload) IS NOT NULL"
            ).fetchone()
            or (0,)
        )[0]
        storage = (conn.execute(STORAGE).fetchone() or ("",))[0]
    return Sizes(
        rows=rows,
        heap=heap,
        toast=toast,
        maps=maps,
        total=total,
        indexes=indexes,
        columns={name: float(v) for name, v in zip(("id", *COLUMNS), per_column, strict=True)},
        row_bytes=float(row_bytes),
        compressed=compressed,
        settings=f"{options or 'no storage parameters'}; {storage}",
    )


# Columns that repeat a value the payload also holds (the candidates for not storing twice).
REPEATED = (
    "url",
    "path",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "ip",
    "user_agent",
)


def report(variants: list[Variant], measured: dict[str, Sizes], args: argparse.Namespace) -> None:
    base = measured[variants[0].name]
    names = [v.name for v in variants]
    width = max(12, *(len(n) for n in names))

    def line(label: str, values: Sequence[float], fmt: str = ",.0f") -> None:
        cells = "".join(f"{value:>{width + 2}{fmt}}" for value in values)
        print(f"  {label:<38}{cells}")

    print(f"\n== bytes per event ({base.rows:,} events, after VACUUM ANALYZE)")
    print(f"  {'':<38}" + "".join(f"{n:>{width + 2}}" for n in names))
    per = {n: measured[n] for n in names}
    line("heap", [s.heap / s.rows for s in per.values()])
    line("TOAST (table + its index)", [s.toast / s.rows for s in per.values()])
    for index in base.indexes:
        line(index.removeprefix("raw."), [s.indexes.get(index, 0) / s.rows for s in per.values()])
    line("free space + visibility maps", [s.maps / s.rows for s in per.values()])
    line("total (pg_total_relation_size)", [s.total / s.rows for s in per.values()])
    line("  ratio to the first", [s.total / base.total for s in per.values()], ".3f")
    line("average row (tuple) bytes", [s.row_bytes for s in per.values()], ",.1f")
    line("payload column, average bytes", [s.columns["payload"] for s in per.values()], ",.1f")
    line("payloads compressed (%)", [100 * s.compressed / s.rows for s in per.values()], ".1f")
    line(
        "repeated columns, average bytes",
        [sum(s.columns[c] for c in REPEATED) for s in per.values()],
        ",.1f",
    )
    print(f"  repeated columns: {', '.join(REPEATED)}")
    hoff = 32  # 23-byte tuple header + a 3-byte null bitmap for 24 columns, MAXALIGNed
    padding = base.row_bytes - hoff - sum(base.columns.values())
    print(f"  alignment padding inside a '{names[0]}' row: {padding:.1f} bytes on average")
    print("\n  average stored bytes per column (first variant):")
    for name, value in sorted(base.columns.items(), key=lambda kv: -kv[1]):
        print(f"    {name:<22}{value:8.1f}")
    for name, s in per.items():
        print(f"  {name}: {s.settings}")

    print(
        f"\n== ingest: COPY ... FORMAT BINARY, {args.chunk} rows per autocommit COPY, "
        f"{args.rounds} alternating rounds of {base.rows // args.rounds:,} rows"
    )
    first_rate = base.rows / sum(variants[0].copy_seconds)
    for v in variants:
        rates = ", ".join(f"{base.rows / args.rounds / s:,.0f}" for s in v.copy_seconds)
        rate = base.rows / sum(v.copy_seconds)
        print(f"  {v.name:<{width}} {rate:>9,.0f} rows/s  ratio {rate / first_rate:.3f}  ({rates})")

    if args.scans:
        print(
            f"\n== reading every payload (as text, and one field of it), {args.scans} times "
            "each, median"
        )
        first_scan = statistics.median(variants[0].scan_seconds)
        for v in variants:
            scan = statistics.median(v.scan_seconds)
            runs = ", ".join(f"{s:.2f}" for s in v.scan_seconds)
            print(f"  {v.name:<{width}} {scan:6.2f} s  ratio {scan / first_scan:.3f}  ({runs})")


@contextlib.contextmanager
def server(folder: Path) -> Iterator[str]:
    """A server to create the variants' databases on (LYTICS_BENCH_DATABASE_URL's or embedded)."""
    given = os.environ.get("LYTICS_BENCH_DATABASE_URL")
    if given:
        yield given
        return
    with scratch_database(None, folder, name_prefix="lyt_storage") as url:
        yield url


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = normalized_rows(args.events, args.seed, start, timedelta(days=args.days))
    print(f"{len(rows):,} events normalized in {time.perf_counter() - started:.1f} s", flush=True)
    sent = sum(len(r[COLUMNS.index("payload")].encode()) for r in rows) / len(rows)
    print(f"  average payload as sent: {sent:,.0f} bytes of JSON", flush=True)

    folder = Path(tempfile.mkdtemp(prefix="lytics-storage-", dir="/tmp"))
    try:
        with server(folder) as url, contextlib.ExitStack() as stack:
            plans = [("before", args.before, None), ("after", "head", None)]
            plans += [(name, args.before, statement) for name, statement in args.try_]
            variants = []
            for name, revision, statement in plans:
                db = stack.enter_context(
                    scratch_database(url, folder, name_prefix=f"lyt_st_{name}")
                )
                migrate.upgrade(db, revision)
                dsn = libpq_dsn(render(with_driver(db, "psycopg")))
                if statement:
                    with psycopg.connect(dsn, autocommit=True) as conn:
                        conn.execute(statement)
                variants.append(Variant(name, dsn, revision, [], []))
            with psycopg.connect(variants[0].dsn) as conn:
                version = (conn.execute("SHOW server_version").fetchone() or ("?",))[0]
            print(f"Postgres {version}; variants: " + ", ".join(f"{n} ({r})" for n, r, _ in plans))

            head = next(v for v in variants if v.revision == "head")
            written = {"head": rows, args.before: as_before_0014(head.dsn, rows)}
            size = -(-len(rows) // args.rounds)
            for r in range(args.rounds):
                order = variants if r % 2 == 0 else variants[::-1]
                for v in order:
                    part = written[v.revision][r * size : (r + 1) * size]
                    v.copy_seconds.append(copy_rows(v.dsn, part, args.chunk))
                print(
                    f"  round {r + 1}: "
                    + ", ".join(
                        f"{v.name} {len(part) / v.copy_seconds[-1]:,.0f} rows/s" for v in variants
                    ),
                    flush=True,
                )
            measured = {v.name: sizes(v.dsn) for v in variants}
            for r in range(args.scans):
                for v in variants if r % 2 == 0 else variants[::-1]:
                    v.scan_seconds.append(scan_payloads(v.dsn))
            report(variants, measured, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _variant(text: str) -> tuple[str, str]:
    name, _, statement = text.partition("=")
    if not name.isidentifier() or not statement:
        raise argparse.ArgumentTypeError("expected NAME=SQL")
    return name, statement


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=7, help="received over this many days")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--before", default="0013", help="the revision measured as 'before'")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=500, help="rows per COPY (the writer's max)")
    parser.add_argument("--scans", type=int, default=3, help="0: skip reading the payloads")
    parser.add_argument(
        "--try",
        dest="try_",
        type=_variant,
        action="append",
        default=[],
        metavar="NAME=SQL",
        help="another variant: a database at --before, then this SQL (repeatable)",
    )
    args = parser.parse_args(argv)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    where = (
        "LYTICS_BENCH_DATABASE_URL" if os.environ.get("LYTICS_BENCH_DATABASE_URL") else "embedded"
    )
    print(
        f"machine: {os.cpu_count()} cores, load average {load}; Postgres: {where}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    run(args)
    print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
