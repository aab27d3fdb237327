"""Ingest throughput and latency against their ceilings, measured in one run on one machine.

Phases (each warmed up, then measured for `--seconds`, on 127.0.0.1 only):

  (a) COPY ceiling: psycopg 3 `cursor.copy` of the rows the API would store (same columns,
      same jsonb payloads, same unique index) into `raw.events`, one COMMIT per chunk.
  (b) `POST /v1/batch`, 100 Segment events per request, several clients.
  (c) `POST /v1/track`, one event per request, 64 clients.
  (d) a bare Litestar endpoint that reads and msgspec-decodes the same body (no database),
      served like (c), same 64 clients: the HTTP ceiling.
  (e) context: one ORM INSERT + COMMIT per request (`--no-orm` skips it).

The real API is served as in production (`python -m lytics_ingest_api`, uvicorn); the
load generator is wrk when installed (`--install-wrk` runs `apt-get install -y wrk`), else
Python processes with http.client keep-alive connections. After (b) and (c) the rows in
the database are checked against the events the generator saw acknowledged.

Each phase waits (up to `--quiet-wait` s) for the machine to be idle and reports the CPU
used by the server, Postgres, the generator and everything else. `--diagnostics` adds a
database-only phase: the writer's staging path (for batches holding a duplicate).

The script reports; it never fails on a missed target (exit 1 only if an acknowledged
event is missing from the database or stored unlike the event sent, 2 if the harness
itself could not run). See benchmarks/README.md and `--help`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import math
import multiprocessing as mp
import multiprocessing.queues
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import msgspec
import psycopg
from psycopg import sql
from psycopg.types.json import set_json_dumps

from lytics import api_keys
from lytics.embedded_postgres import EmbeddedPostgres
from lytics.projects import create_project
from lytics.warehouse import migrate
from lytics.warehouse.engine import create_sync_engine
from lytics.warehouse.urls import libpq_dsn, render, with_database, with_driver
from lytics_ingest_api.events.normalize import RequestContext, segment_event
from lytics_ingest_api.events.writer import (
    COLUMNS,
    COPY_STAGING,
    CREATE_STAGING,
    DIRECT_TYPES,
    INSERT_EVENTS,
    STAGING_TYPES,
)

psutil: Any  # a dev dependency: without it the CPU split is not printed
try:
    import psutil
except ImportError:
    psutil = None

BENCH_DIR = Path(__file__).resolve().parent
USER_AGENT = "lytics-bench/1.0"
MARK = "@@MESSAGE-ID@@"
TARGET_BATCH_VS_COPY = 0.60
TARGET_TRACK_VS_BARE = 0.50
TARGET_TRACK_P99_MS = 25.0
DISTURBED_CORES = 0.25  # CPU used outside the benchmark above which a phase is flagged
COPY_SQL = f"COPY raw.events ({', '.join(COLUMNS)}) FROM STDIN"
INGEST_ROLE = "lytics_ingest"


class HarnessError(RuntimeError):
    """The benchmark could not run (a server did not start, a tool is missing...)."""


# --------------------------------------------------------------------------------------
# The workload: one Segment track event, identical in every phase but for its messageId.
# --------------------------------------------------------------------------------------


def event_template(now: datetime) -> dict[str, Any]:
    stamp = (now - timedelta(seconds=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": "user-4242",
        "anonymousId": "0f8e2b44-5a1d-4b0c-9a57-3f2d1c6e8b90",
        "properties": {
            "orderId": "ord-100042",
            "revenue": 42.5,
            "currency": "EUR",
            "coupon": None,
            "products": [
                {"sku": "SKU-1", "name": "Mug", "price": 20.0, "quantity": 1},
                {"sku": "SKU-2", "name": "Tea", "price": 22.5, "quantity": 1},
            ],
        },
        "context": {
            "library": {"name": "analytics-python", "version": "2.3.3"},
            "page": {
                "url": "https://shop.example.com/checkout/complete?step=3",
                "path": "/checkout/complete",
                "referrer": "https://shop.example.com/cart",
            },
            "campaign": {"source": "newsletter", "medium": "email", "name": "spring-sale"},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0",
            "locale": "en-GB",
            "timezone": "Europe/Berlin",
        },
        "integrations": {},
        "timestamp": stamp,
        "sentAt": stamp,
        "messageId": MARK,
    }


@dataclass(frozen=True)
class Workload:
    path: str
    per_request: int
    head: str  # the event's JSON up to its messageId
    tail: str  # ... and after it

    def event(self, message_id: str) -> str:
        return self.head + message_id + self.tail

    def body(self, ids: Sequence[str]) -> bytes:
        if self.per_request == 1:
            return self.event(ids[0]).encode()
        return ('{"batch":[' + ",".join(self.event(i) for i in ids) + "]}").encode()


def split_template(template: dict[str, Any]) -> tuple[str, str]:
    text = msgspec.json.encode(template).decode()
    head, tail = text.split(MARK)
    return head, tail


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return math.nan
    rank = max(0, min(len(values) - 1, math.ceil(q / 100 * len(values)) - 1))
    return values[rank]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def machine_busy(seconds: float) -> float:
    """Cores busy over `seconds` (all processes)."""
    if psutil is None:
        return math.nan

    def busy(t: Any) -> float:
        return float(t.user + t.nice + t.system + t.irq + t.softirq + t.steal)

    before = psutil.cpu_times()
    time.sleep(seconds)
    return (busy(psutil.cpu_times()) - busy(before)) / seconds


def tree_cpu(pid: int | None) -> float:
    """CPU seconds of a process, its live descendants, and the children it has reaped."""
    if psutil is None or pid is None:
        return 0.0
    total = 0.0
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = float(times.user + times.system + times.children_user + times.children_system)
        for proc in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    except psutil.Error:
        return 0.0
    return total


class CpuMeter:
    """Cores busy during a window: all of them (/proc/stat), the server, Postgres (the
    embedded postmaster and its backends), the generator (this process and its waited-for
    children: wrk, the Python generator, the COPY loops), and the rest of the machine."""

    def __init__(self, server_pid: int | None, postgres_pid: int | None) -> None:
        self._pids = (server_pid, postgres_pid)
        self._start: tuple[float, ...] = ()

    def _sample(self) -> tuple[float, ...]:
        busy = 0.0
        if psutil is not None:
            t = psutil.cpu_times()
            busy = t.user + t.nice + t.system + t.irq + t.softirq + t.steal
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        generator = children.ru_utime + children.ru_stime + me.ru_utime + me.ru_stime
        server, postgres = (tree_cpu(pid) for pid in self._pids)
        return time.monotonic(), busy, server, postgres, generator

    def start(self) -> None:
        self._start = self._sample()

    def stop(self, unreaped: float = 0.0) -> dict[str, float]:
        """`unreaped`: CPU seconds of generator processes not yet waited for (they report it)."""
        end = self._sample()
        wall = end[0] - self._start[0]
        if psutil is None or wall <= 0:
            return {}
        total, server, postgres, generator = ((end[i] - self._start[i]) / wall for i in range(1, 5))
        generator += unreaped / wall
        cpu = {"total": total}
        if self._pids[0] is not None:
            cpu["server"] = server
        if self._pids[1] is not None:
            cpu["postgres"] = postgres
        cpu["generator"] = generator
        other = "other" if self._pids[1] is not None else "postgres+other"
        cpu[other] = max(0.0, total - server - postgres - generator)
        return cpu


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass
class LoadRun:
    """One measured run of a load generator (or of the COPY loop)."""

    seconds: float
    requests: int  # answered 2xx inside the window
    events: int  # events acknowledged inside the window
    p50_ms: float  # latency of the 2xx answers inside the window
    p99_ms: float
    errors: int = 0  # transport errors, timeouts, non-2xx
    sent: int = 0  # requests sent, including after the window (drain) or cut off
    answered: int = 0  # requests answered (any status)
    acked_ids: set[str] | None = None  # every acknowledged messageId (window and drain)
    partial: int = 0  # 2xx answers that did not accept every event sent
    cpu: dict[str, float] = field(default_factory=dict)


@dataclass
class PhaseResult:
    key: str
    label: str
    clients: int
    latency_of: str
    events_per_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu: dict[str, float]
    rows_per_commit: float | None = None
    verification: str | None = None
    lost: int | None = None


def phase_from_run(
    key: str, label: str, clients: int, latency_of: str, run: LoadRun
) -> PhaseResult:
    return PhaseResult(
        key=key,
        label=label,
        clients=clients,
        latency_of=latency_of,
        events_per_s=run.events / run.seconds if run.seconds else 0.0,
        requests_per_s=run.requests / run.seconds if run.seconds else 0.0,
        p50_ms=run.p50_ms,
        p99_ms=run.p99_ms,
        errors=run.errors,
        cpu=run.cpu,
    )


# --------------------------------------------------------------------------------------
# Load generators
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadJob:
    workload: Workload
    port: int
    clients: int
    seconds: int
    prefix: str  # every messageId of the run starts with it


class Generator(Protocol):
    description: str

    def run(self, job: LoadJob, meter: CpuMeter) -> LoadRun: ...


WRK_SCRIPT = r"""-- generated by benchmarks/bench_ingest.py
local head = [==[{head}]==]
local tail = [==[{tail}]==]
local prefix = "{prefix}"
local per_request = {per_request}
local path = "{path}"
local counter = 0
local threads = {{}}
sent, answered, acked, failed, partial = 0, 0, 0, 0, 0
acks = {{}}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "{authorization}"
  wrk.headers["User-Agent"] = "{user_agent}"
  id_prefix = prefix .. tid .. "-"
end

function request()
  sent = sent + 1
  if per_request == 1 then
    counter = counter + 1
    return wrk.format(nil, path, nil, head .. id_prefix .. counter .. tail)
  end
  local parts = {{}}
  for i = 1, per_request do
    counter = counter + 1
    parts[i] = head .. id_prefix .. counter .. tail
  end
  return wrk.format(nil, path, nil, '{{"batch":[' .. table.concat(parts, ",") .. ']}}')
end

function response(status, headers, body)
  answered = answered + 1
  if status < 200 or status > 299 then
    failed = failed + 1
    return
  end
  -- The first messageId of the answer is the request's first event (results keep order).
  local id = string.match(body, '"messageId":"([^"]*)"')
  if per_request == 1 then
    if id and string.find(body, '"status":"accepted"', 1, true) then
      acked = acked + 1
      acks[#acks + 1] = id
    else
      partial = partial + 1
    end
  else
    local n = tonumber(string.match(body, '"accepted":(%d+)')) or 0
    if n ~= per_request then partial = partial + 1 end
    acked = acked + n
    acks[#acks + 1] = (id or "?") .. " " .. n
  end
end

function done(summary, latency, requests)
  local t = {{sent = 0, answered = 0, acked = 0, failed = 0, partial = 0}}
  local out = io.open("{acks_file}", "w")
  for _, thread in ipairs(threads) do
    for name, _ in pairs(t) do t[name] = t[name] + thread:get(name) end
    for _, line in ipairs(thread:get("acks")) do out:write(line, "\n") end
  end
  out:close()
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {{"duration_us":%.0f,"requests":%.0f,"connect":%.0f,"read":%.0f,' ..
    '"write":%.0f,"status":%.0f,"timeout":%.0f,"p50_us":%.0f,"p99_us":%.0f,' ..
    '"sent":%.0f,"answered":%.0f,"acked":%.0f,"failed":%.0f,"partial":%.0f}}\n',
    summary.duration, summary.requests, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99),
    t.sent, t.answered, t.acked, t.failed, t.partial))
end
"""


def lua_string(value: str) -> str:
    if "]==]" in value:
        raise ValueError("the template cannot hold ]==]")
    return value


class WrkGenerator:
    """wrk with a Lua script: unique messageIds per thread, acknowledged ids written at the end.

    wrk stops at its deadline without waiting for the requests in flight: those may still
    be committed by the server without having been counted. The check accounts for them.
    """

    def __init__(self, exe: str, threads: int, workdir: Path, authorization: str) -> None:
        self.exe = exe
        self.threads = threads
        self.workdir = workdir
        self.authorization = authorization
        version = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        self.description = f"{version[0].split(' Copyright')[0] if version else 'wrk'}, "
        self.description += f"{threads} thread(s), Lua request()/response()"

    def run(self, job: LoadJob, meter: CpuMeter) -> LoadRun:
        workload, clients, seconds, prefix = job.workload, job.clients, job.seconds, job.prefix
        acks_file = self.workdir / f"acks-{prefix}txt"
        script = self.workdir / f"wrk-{prefix}lua"
        script.write_text(
            WRK_SCRIPT.format(
                head=lua_string(workload.head),
                tail=lua_string(workload.tail),
                prefix=prefix,
                per_request=workload.per_request,
                path=workload.path,
                authorization=self.authorization,
                user_agent=USER_AGENT,
                acks_file=acks_file,
            )
        )
        threads = max(1, min(self.threads, clients))
        cmd = [
            self.exe,
            f"-t{threads}",
            f"-c{clients}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{job.port}{workload.path}",
        ]
        meter.start()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            out, err = proc.communicate(timeout=seconds + 60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        cpu = meter.stop()
        line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
        if proc.returncode != 0 or line is None:
            raise HarnessError(f"wrk failed ({proc.returncode}): {err.strip() or out.strip()}")
        stats = json.loads(line.removeprefix("BENCH_JSON "))
        acked_ids, partial = self._acked_ids(acks_file, workload.per_request)
        duration = stats["duration_us"] / 1e6
        answered_ok = stats["answered"] - stats["failed"]
        errors = int(stats["connect"] + stats["read"] + stats["write"] + stats["timeout"])
        return LoadRun(
            seconds=duration,
            requests=int(answered_ok),
            events=int(stats["acked"]),
            # wrk's histogram covers every answer (errors, if any, are reported beside it).
            p50_ms=stats["p50_us"] / 1000,
            p99_ms=stats["p99_us"] / 1000,
            errors=errors + int(stats["failed"]),
            sent=int(stats["sent"]),
            answered=int(stats["answered"]),
            acked_ids=acked_ids,
            partial=max(partial, int(stats["partial"])),
            cpu=cpu,
        )

    @staticmethod
    def _acked_ids(path: Path, per_request: int) -> tuple[set[str] | None, int]:
        ids: set[str] = set()
        partial = 0
        for line in path.read_text().splitlines():
            if per_request == 1:
                ids.add(line)
                continue
            first, _, count = line.partition(" ")
            base, _, number = first.rpartition("-")
            if int(count) != per_request or not number.isdigit():
                partial += 1  # could not tell which events of this request were taken
                continue
            start = int(number)
            ids.update(f"{base}-{start + i}" for i in range(per_request))
        return (ids if not partial else None), partial


@dataclass(frozen=True)
class ClientSpec:
    job: LoadJob
    proc_no: int
    threads: int
    authorization: str
    start_at: float
    stop_at: float


def _py_connection(spec: ClientSpec, thread_no: int) -> dict[str, Any]:
    """One keep-alive connection, one request at a time, until the deadline (then drain)."""
    job, workload = spec.job, spec.job.workload
    headers = {
        "Content-Type": "application/json",
        "Authorization": spec.authorization,
        "User-Agent": USER_AGENT,
    }
    id_prefix = f"{job.prefix}{spec.proc_no}.{thread_no}-"
    conn = http.client.HTTPConnection("127.0.0.1", job.port, timeout=30)
    counter = 0
    latencies: list[float] = []
    acked: list[str] = []
    stats = {"sent": 0, "answered": 0, "errors": 0, "partial": 0, "ok": 0, "events": 0}
    while time.time() < spec.start_at:
        time.sleep(0.001)
    while time.time() < spec.stop_at:
        ids = [f"{id_prefix}{counter + i}" for i in range(workload.per_request)]
        counter += workload.per_request
        body = workload.body(ids)
        started = time.perf_counter()
        stats["sent"] += 1
        try:
            conn.request("POST", workload.path, body, headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            stats["errors"] += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", job.port, timeout=30)
            continue
        elapsed = time.perf_counter() - started
        in_window = time.time() <= spec.stop_at
        stats["answered"] += 1
        if not 200 <= resp.status < 300:
            stats["errors"] += 1
            continue
        taken = _accepted_ids(data, ids)
        stats["partial"] += len(taken) != len(ids)
        acked.extend(taken)
        if in_window:
            stats["ok"] += 1
            stats["events"] += len(taken)
            latencies.append(elapsed * 1000)
    conn.close()
    return {"latencies": latencies, "acked": acked, **stats}


def _py_client(spec: ClientSpec, results: multiprocessing.queues.Queue[dict[str, Any]]) -> None:
    """One generator process: `spec.threads` connections in threads."""
    out: list[dict[str, Any]] = []
    lock = threading.Lock()

    def client(thread_no: int) -> None:
        part = _py_connection(spec, thread_no)
        with lock:
            out.append(part)

    workers = [threading.Thread(target=client, args=(i,)) for i in range(spec.threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    merged: dict[str, Any] = {"latencies": [], "acked": []}
    for part in out:
        merged["latencies"].extend(part.pop("latencies"))
        merged["acked"].extend(part.pop("acked"))
        for name, value in part.items():
            merged[name] = merged.get(name, 0) + value
    usage = resource.getrusage(resource.RUSAGE_SELF)
    merged["cpu"] = usage.ru_utime + usage.ru_stime
    results.put(merged)


def _accepted_ids(data: bytes, ids: list[str]) -> list[str]:
    if len(ids) == 1:
        return ids if b'"status":"accepted"' in data else []
    if b'"accepted":%d,' % len(ids) in data:
        return ids
    answer = msgspec.json.decode(data)
    return [r["messageId"] for r in answer.get("results", []) if r.get("status") == "accepted"]


class PythonGenerator:
    """Fallback: processes x threads, each thread one http.client keep-alive connection.

    After the deadline every connection finishes its request in flight (and nothing new is
    sent), so the acknowledged ids can be compared with the database exactly.
    """

    def __init__(self, processes: int, authorization: str) -> None:
        self.processes = processes
        self.authorization = authorization
        self.description = (
            f"Python http.client keep-alive, up to {processes} processes x threads "
            "(wrk not found: pass --install-wrk to use wrk)"
        )

    def run(self, job: LoadJob, meter: CpuMeter) -> LoadRun:
        clients, seconds = job.clients, job.seconds
        ctx = mp.get_context("fork")
        results: multiprocessing.queues.Queue[dict[str, Any]] = ctx.Queue()
        procs_n = max(1, min(self.processes, clients))
        shares = [clients // procs_n + (1 if i < clients % procs_n else 0) for i in range(procs_n)]
        start_at = time.time() + 0.5
        stop_at = start_at + seconds
        procs = [
            ctx.Process(
                target=_py_client,
                args=(ClientSpec(job, i, n, self.authorization, start_at, stop_at), results),
                daemon=True,
            )
            for i, n in enumerate(shares)
        ]
        meter.start()
        parts: list[dict[str, Any]] = []
        try:
            for p in procs:
                p.start()
            for _ in procs:
                parts.append(results.get(timeout=seconds + 90))
            cpu = meter.stop(unreaped=sum(part["cpu"] for part in parts))
            for p in procs:
                p.join(10)
        finally:
            for p in procs:
                if p.is_alive():
                    p.kill()
                    p.join()
        latencies = sorted(x for part in parts for x in part["latencies"])
        acked = {x for part in parts for x in part["acked"]}
        total = {k: sum(part[k] for part in parts) for k in ("sent", "answered", "errors")}
        return LoadRun(
            seconds=float(seconds),
            requests=sum(part["ok"] for part in parts),
            events=sum(part["events"] for part in parts),
            p50_ms=percentile(latencies, 50),
            p99_ms=percentile(latencies, 99),
            errors=total["errors"],
            sent=total["sent"],
            answered=total["answered"],
            acked_ids=acked,
            partial=sum(part["partial"] for part in parts),
            cpu=cpu,
        )


# --------------------------------------------------------------------------------------
# Database-only loops: COPY (the ceiling) and, with --diagnostics, the writer's statement
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DbJob:
    # copy: the ceiling; copy-binary: the same, FORMAT BINARY (the writer's direct path);
    # stage: the writer's staging path, COPY into a temp table then INSERT .. SELECT
    mode: str
    dsn: str
    template: list[Any]  # one row as the normalizer makes it, in COLUMNS order
    head: str
    tail: str
    chunk: int


def _db_rows(job: DbJob, prefix: str, start: int) -> list[list[Any]]:
    mid_i, payload_i = COLUMNS.index("message_id"), COLUMNS.index("payload")
    time_is = [COLUMNS.index("received_at"), COLUMNS.index("timestamp")]
    now = datetime.now(UTC)
    rows = []
    for n in range(start, start + job.chunk):
        row = list(job.template)
        mid = f"{prefix}{n}"
        row[mid_i] = mid
        row[payload_i] = job.head + mid + job.tail
        for i in time_is:
            row[i] = now
        rows.append(row)
    return rows


def _db_write(job: DbJob, cur: psycopg.Cursor[Any], rows: list[list[Any]]) -> None:
    if job.mode == "copy":
        with cur.copy(COPY_SQL) as copy:
            for row in rows:
                copy.write_row(row)
    elif job.mode == "copy-binary":
        with cur.copy(f"{COPY_SQL} (FORMAT BINARY)") as copy:
            copy.set_types(DIRECT_TYPES)
            for row in rows:
                copy.write_row(row)
    else:
        cur.execute(CREATE_STAGING)  # every transaction, as the writer does (pgbouncer-safe)
        with cur.copy(COPY_STAGING) as copy:
            copy.set_types(STAGING_TYPES)
            for row in rows:
                copy.write_row(row)
        cur.execute(INSERT_EVENTS)
        cur.fetchall()


def _db_loop(
    job: DbJob,
    window: tuple[str, float, float],
    results: multiprocessing.queues.Queue[dict[str, Any]],
    release: Any,
) -> None:
    """Write chunks until the deadline; one transaction per chunk, timed to its COMMIT.

    Building the rows (string concatenation, ~1 us a row) happens before the clock starts;
    adapting them (psycopg's C code) is inside, as it would be in a COPY-based writer.
    """
    prefix, start_at, stop_at = window
    kwargs: dict[str, Any] = {"prepare_threshold": None}
    if not job.mode.startswith("copy"):
        # The ceilings run as the superuser; the other statements as the ingest role.
        kwargs["options"] = f"-c role={INGEST_ROLE}"
    latencies: list[float] = []
    events = chunks = counter = 0
    with psycopg.connect(job.dsn, **kwargs) as conn:
        # The payload is JSON text already: the binary jsonb dumper must not encode it again.
        set_json_dumps(lambda obj: obj if isinstance(obj, str) else json.dumps(obj), conn)
        while time.time() < start_at:
            time.sleep(0.001)
        while time.time() < stop_at:
            rows = _db_rows(job, prefix, counter)
            counter += job.chunk
            started = time.perf_counter()
            with conn.cursor() as cur:
                _db_write(job, cur, rows)
            conn.commit()
            elapsed = time.perf_counter() - started
            if time.time() <= stop_at:
                latencies.append(elapsed * 1000)
                events += job.chunk
                chunks += 1
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime
        results.put({"latencies": latencies, "events": events, "chunks": chunks, "cpu": cpu})
        # Keep the backend alive until the parent has read Postgres' CPU time.
        release.wait(60)


def run_db_loop(job: DbJob, *, prefix: str, workers: int, seconds: int, meter: CpuMeter) -> LoadRun:
    ctx = mp.get_context("fork")
    results: multiprocessing.queues.Queue[dict[str, Any]] = ctx.Queue()
    release = ctx.Event()
    start_at = time.time() + 0.5
    stop_at = start_at + seconds
    procs = [
        ctx.Process(
            target=_db_loop,
            args=(job, (f"{prefix}{i}-", start_at, stop_at), results, release),
            daemon=True,
        )
        for i in range(workers)
    ]
    meter.start()
    parts: list[dict[str, Any]] = []
    try:
        for p in procs:
            p.start()
        for _ in procs:
            parts.append(results.get(timeout=seconds + 90))
        cpu = meter.stop(unreaped=sum(p["cpu"] for p in parts))
        release.set()
        for p in procs:
            p.join(10)
    finally:
        release.set()
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    latencies = sorted(x for p in parts for x in p["latencies"])
    return LoadRun(
        seconds=float(seconds),
        requests=sum(p["chunks"] for p in parts),
        events=sum(p["events"] for p in parts),
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        cpu=cpu,
    )


# --------------------------------------------------------------------------------------
# Postgres, the project, and the servers
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def database(database_url: str | None, tmp: Path) -> Iterator[tuple[str, int | None]]:
    """A migrated database: a fresh one on `database_url`'s server, or an embedded server.

    Yields its URL and, for the embedded server, the postmaster's pid (for the CPU split).
    """
    if database_url:
        server = render(with_driver(database_url, "psycopg"))
        name = f"lyt_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(libpq_dsn(server), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            url = render(with_database(server, name))
            migrate.upgrade(url)
            yield url, None
        finally:
            with psycopg.connect(libpq_dsn(server), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        return
    pg = EmbeddedPostgres(tmp / "pg")
    try:
        url = pg.start()
        migrate.upgrade(url)
        yield url, pg.postmaster_pid()
    finally:
        pg.stop()


def new_project(url: str) -> tuple[int, str]:
    engine = create_sync_engine(url)
    try:
        with engine.begin() as conn:
            project = create_project(conn, "bench")
            key = api_keys.create_key(conn, project.id, "write", "bench")
    finally:
        engine.dispose()
    return project.id, key.plaintext


def reset_events(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE raw.events")
        conn.execute("CHECKPOINT")


def stored_ids(dsn: str, prefix: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        cur = conn.execute(
            "SELECT message_id FROM raw.events WHERE left(message_id, %s) = %s",
            (len(prefix), prefix),
        )
        return {row[0] for row in cur}


def odd_payloads(dsn: str, prefix: str, template: str) -> int:
    """Stored rows whose payload is not the event as sent (the writer sends it as jsonb)."""
    with psycopg.connect(dsn) as conn:
        cur = conn.execute(
            "SELECT count(*) FROM raw.events WHERE left(message_id, %s) = %s"
            " AND payload - 'messageId' <> %s::jsonb - 'messageId'",
            (len(prefix), prefix, template),
        )
        row = cur.fetchone()
        return int(row[0]) if row else 0


def settle(dsn: str, prefix: str, timeout: float = 20.0) -> set[str]:
    """The stored ids once the server has finished what was in flight (count stable 1 s)."""
    deadline = time.monotonic() + timeout
    previous: set[str] | None = None
    while True:
        time.sleep(0.5)
        ids = stored_ids(dsn, prefix)
        if previous is not None and len(ids) == len(previous):
            return ids
        if time.monotonic() > deadline:
            return ids
        previous = ids


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path


def stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM to the group we started (uvicorn and its workers), SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def served(
    name: str, argv: list[str], env: dict[str, str], ready: str, tmp: Path
) -> Iterator[Server]:
    port = free_port()
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*argv, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tmp,  # no stray .env file from the working directory
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise HarnessError(f"{name} exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = http_get(port, ready, timeout=2)
                if status == 200:
                    break
            if time.monotonic() > deadline:
                raise HarnessError(f"{name} not ready after 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield Server(proc, port, log)
    finally:
        stop_process_group(proc)


def writer_rows(port: int) -> tuple[float, float]:
    """(sum, count) of the writer's rows-per-commit histogram, from /metrics."""
    try:
        _, body = http_get(port, "/metrics")
    except (OSError, http.client.HTTPException):
        return math.nan, math.nan
    text = body.decode()

    def value(name: str) -> float:
        found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else math.nan

    return value("lytics_writer_batch_rows_sum"), value("lytics_writer_batch_rows_count")


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    tmp: Path
    url: str
    dsn: str
    project_id: int
    write_key: str
    generator: Generator
    postgres_pid: int | None
    token: str = field(default_factory=lambda: secrets.token_hex(3))
    results: dict[str, PhaseResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def prefix(self, phase: str, kind: str) -> str:
        # Only [a-z0-9.-]: the check compares prefixes, never LIKE patterns.
        return f"{phase}{kind}{self.token}-"

    def server_env(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LYTICS_")}
        env.update(
            DATABASE_URL=self.url,
            LYTICS_SECRET_KEY=secrets.token_urlsafe(32),
            LOG_LEVEL="WARNING",
            LYTICS_RATE_LIMIT_PER_SECOND="0",
            LYTICS_DATA_DIR=str(self.tmp / "data"),
            BENCH_PROJECT_ID=str(self.project_id),
        )
        env.update(extra)
        return env

    def log(self, message: str) -> None:
        print(f"  .. {message}", flush=True)

    # --- phases ------------------------------------------------------------------

    def copy_template(self, head: str, tail: str) -> list[Any]:
        ctx = RequestContext(
            project_id=self.project_id,
            received_at=datetime.now(UTC),
            source="segment",
            max_event_bytes=32 * 1024,
            max_future=timedelta(hours=23),
            ip="127.0.0.1",
            user_agent=USER_AGENT,
        )
        sample = head + "sample-id" + tail
        row = segment_event(msgspec.json.decode(sample), ctx, None)
        if row.payload != sample:
            raise HarnessError("the normalizer changed the payload: COPY rows would differ")
        return [getattr(row, name) for name in COLUMNS]

    def wait_for_quiet(self, key: str) -> None:
        """Other sessions share this machine: start a phase when they leave it (mostly) idle."""
        args = self.args
        deadline = time.monotonic() + args.quiet_wait
        busy = machine_busy(1.0)
        if busy > args.quiet_cores and args.quiet_wait > 0:
            self.log(f"{key}: {busy:.2f} cores busy elsewhere; waiting up to {args.quiet_wait} s")
            while busy > args.quiet_cores and time.monotonic() < deadline:
                busy = machine_busy(2.0)
        if busy > args.quiet_cores:
            self.log(f"{key}: starting anyway with {busy:.2f} cores busy elsewhere")

    def db_phase(self, key: str, mode: str, label: str, head: str, tail: str) -> PhaseResult:
        args = self.args
        job = DbJob(mode, self.dsn, self.copy_template(head, tail), head, tail, args.copy_chunk)
        reset_events(self.dsn)
        self.wait_for_quiet(key)
        meter = CpuMeter(None, self.postgres_pid)
        workers = args.copy_workers
        prefix = self.prefix(key, "w")
        run_db_loop(job, prefix=prefix, workers=workers, seconds=args.warmup, meter=meter)
        prefix = self.prefix(key, "m")
        run = run_db_loop(job, prefix=prefix, workers=workers, seconds=args.seconds, meter=meter)
        return phase_from_run(
            key,
            label,
            args.copy_workers,
            f"chunk of {args.copy_chunk} rows, to COMMIT",
            run,
        )

    def http_phase(
        self,
        key: str,
        label: str,
        *,
        server: Server,
        workload: Workload,
        clients: int,
        verify: bool,
    ) -> PhaseResult:
        args = self.args
        reset_events(self.dsn)
        self.wait_for_quiet(key)
        meter = CpuMeter(server.proc.pid, self.postgres_pid)
        self.log(f"{key}: warm-up {args.warmup} s")
        warm = LoadJob(workload, server.port, clients, args.warmup, self.prefix(key, "w"))
        self.generator.run(warm, meter)
        if verify:
            settle(self.dsn, self.prefix(key, "w"))
        before = writer_rows(server.port) if verify else (math.nan, math.nan)
        self.log(f"{key}: measuring {args.seconds} s")
        prefix = self.prefix(key, "m")
        run = self.generator.run(
            LoadJob(workload, server.port, clients, args.seconds, prefix), meter
        )
        unit = "request" if workload.per_request == 1 else f"request of {workload.per_request}"
        result = phase_from_run(key, label, clients, f"{unit}, to its answer", run)
        if verify:
            stored = settle(self.dsn, prefix)
            after = writer_rows(server.port)
            commits = after[1] - before[1]
            if commits > 0:
                result.rows_per_commit = (after[0] - before[0]) / commits
            self.verify(result, run, stored, workload.per_request)
            odd = odd_payloads(self.dsn, prefix, workload.event("x"))
            result.verification = f"{result.verification}; payloads unlike the event sent: {odd}"
            result.lost = (result.lost or 0) + odd
        return result

    def verify(self, result: PhaseResult, run: LoadRun, stored: set[str], per_request: int) -> None:
        in_flight = max(0, run.sent - run.answered)
        if run.acked_ids is None:
            acked_n = run.events
            result.verification = (
                f"stored {len(stored)}, acknowledged {acked_n} (ids unknown for "
                f"{run.partial} partial answers): compared by count only"
            )
            result.lost = max(0, acked_n - len(stored))
            return
        lost = run.acked_ids - stored
        unanswered = stored - run.acked_ids
        result.lost = len(lost)
        verdict = "OK" if not lost and len(unanswered) <= in_flight * per_request else "FAILED"
        text = (
            f"{verdict}: stored {len(stored)} = acknowledged {len(run.acked_ids)}"
            f" + {len(unanswered)} never answered"
        )
        if in_flight:
            text += f" (cut off by the generator's deadline: {in_flight} requests in flight)"
        text += f"; acknowledged but missing: {len(lost)}"
        result.verification = text

    def run(self) -> None:
        args = self.args
        event = event_template(datetime.now(UTC))
        head, tail = split_template(event)
        self.log(f"event payload: {len(head) + len(tail) + 20} bytes of JSON")

        if "a" in args.phases:
            self.log(f"a: COPY, {args.copy_workers} connection(s), chunks of {args.copy_chunk}")
            self.results["a"] = self.db_phase(
                "a", "copy", "(a) COPY ceiling (psycopg cursor.copy)", head, tail
            )
            # The writer COPYs in binary, which spares the client formatting text: the
            # same COPY in binary is the stricter ceiling for (b), so it always runs too.
            self.log("a1: the same COPY in binary format")
            self.results["a1"] = self.db_phase(
                "a1", "copy-binary", "(a1) COPY ceiling, FORMAT BINARY", head, tail
            )
        if args.diagnostics:
            self.log("a2: the staging path: COPY into a temp table + INSERT .. ON CONFLICT")
            self.results["a2"] = self.db_phase(
                "a2", "stage", "(a2) writer staged: COPY temp+INSERT", head, tail
            )

        track = Workload("/v1/track", 1, head, tail)
        batch = Workload("/v1/batch", args.batch_size, head, tail)
        api_env = self.server_env(dict(args.api_env))
        if args.loop == "auto" and args.http == "auto":
            api_argv = [sys.executable, "-m", "lytics_ingest_api", "--workers", str(args.workers)]
        else:
            api_argv = [
                sys.executable, str(BENCH_DIR / "bare_app.py"), "--app", "lytics",
                "--workers", str(args.workers), "--loop", args.loop, "--http", args.http,
            ]  # fmt: skip
        if "b" in args.phases or "c" in args.phases:
            with served("api", api_argv, api_env, "/health/ready", self.tmp) as api:
                if "b" in args.phases:
                    self.results["b"] = self.http_phase(
                        "b",
                        f"(b) POST /v1/batch x{args.batch_size}",
                        server=api,
                        workload=batch,
                        clients=args.batch_clients,
                        verify=True,
                    )
                if "c" in args.phases:
                    self.results["c"] = self.http_phase(
                        "c",
                        "(c) POST /v1/track",
                        server=api,
                        workload=track,
                        clients=args.clients,
                        verify=True,
                    )
        bare_argv = [
            sys.executable, str(BENCH_DIR / "bare_app.py"), "--workers", str(args.workers),
            "--loop", args.loop, "--http", args.http,
        ]  # fmt: skip
        if "d" in args.phases:
            with served("bare", [*bare_argv, "--app", "bare"], api_env, "/health", self.tmp) as s:
                self.results["d"] = self.http_phase(
                    "d",
                    "(d) bare Litestar, msgspec decode",
                    server=s,
                    workload=track,
                    clients=args.clients,
                    verify=False,
                )
        if "e" in args.phases:
            with served("orm", [*bare_argv, "--app", "orm"], api_env, "/health", self.tmp) as s:
                self.results["e"] = self.http_phase(
                    "e",
                    "(e) ORM INSERT+COMMIT per request",
                    server=s,
                    workload=track,
                    clients=args.clients,
                    verify=False,
                )


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def print_table(results: dict[str, PhaseResult]) -> None:
    print()
    print(
        f"{'phase':<42} {'clients':>7} {'events/s':>10} {'req/s':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'rows/commit':>11}  latency of"
    )
    disturbed = False
    for r in results.values():
        mark = " "
        if r.cpu.get("other", 0.0) > DISTURBED_CORES:
            mark, disturbed = "!", True
        print(
            f"{r.label:<41}{mark} {r.clients:>7} {fmt(r.events_per_s, ',.0f'):>10} "
            f"{fmt(r.requests_per_s, ',.0f'):>9} {fmt(r.p50_ms, '.2f'):>8} "
            f"{fmt(r.p99_ms, '.2f'):>8} {fmt(r.rows_per_commit, '.0f'):>11}  {r.latency_of}"
        )
    if disturbed:
        print(
            f"! more than {DISTURBED_CORES} cores were busy outside the benchmark during this"
            " phase: its numbers are not comparable; run again when the machine is idle."
        )
    if any(r.cpu for r in results.values()):
        print("\nCPU (cores busy out of", os.cpu_count(), "during the measured window)")
        for r in results.values():
            if r.cpu:
                parts = ", ".join(f"{k} {v:.2f}" for k, v in r.cpu.items())
                print(f"  {r.label:<42} {parts}")
    for r in results.values():
        if r.errors:
            print(f"  note: {r.label}: {r.errors} errors/non-2xx answers")


def print_targets(results: dict[str, PhaseResult]) -> dict[str, Any]:
    print("\nTargets (ratios measured in this run):")
    ratios: dict[str, Any] = {}

    def line(name: str, value: float, target: str, ok: bool) -> None:
        print(f"  {name:<44} {value:>8.2f}   target {target:<8} {'PASS' if ok else 'MISS'}")
        ratios[name] = {"value": value, "target": target, "pass": ok}

    a, b, c, d, e = (results.get(k) for k in "abcde")
    if a and b and a.events_per_s:
        value = b.events_per_s / a.events_per_s
        line("(b)/(a) batch events/s vs COPY", value, ">= 0.60", value >= TARGET_BATCH_VS_COPY)
    if c and d and d.requests_per_s:
        value = c.requests_per_s / d.requests_per_s
        line("(c)/(d) track req/s vs bare HTTP", value, ">= 0.50", value >= TARGET_TRACK_VS_BARE)
    if c:
        line("(c) p99 latency, ms", c.p99_ms, "<= 25", c.p99_ms <= TARGET_TRACK_P99_MS)
    a1 = results.get("a1")
    if a1 and b and a1.events_per_s:
        ratio = b.events_per_s / a1.events_per_s
        print(f"  (b)/(a1) vs the stricter binary-COPY ceiling: {ratio:.2f} (context)")
    if c and e and e.events_per_s:
        speedup = c.events_per_s / e.events_per_s
        print(f"  (c)/(e) group commit vs one ORM commit per request: {speedup:.1f}x (context)")
    return ratios


def print_setup(bench: Bench) -> None:
    args = bench.args
    print(f"\nGenerator: {bench.generator.description}")
    print(
        "Served: the real app via `python -m lytics_ingest_api` (uvicorn, "
        f"workers={args.workers}, loop={args.loop}, http={args.http})"
        + (f", env {dict(args.api_env)}" if args.api_env else "")
        + "; (d)/(e) via benchmarks/bare_app.py with the same uvicorn arguments."
    )
    print(
        "(d) has none of the API's middleware (request id, Prometheus, CORS, security headers),"
        " no key lookup, no normalization."
    )
    print(
        f"(a) and (a1) run as the superuser ({args.copy_workers} connection(s)); (a1) is the"
        " format the writer itself uses, the stricter ceiling."
    )
    print("Ratios compare phases of this run only; the generator shares the CPU with the server.")


def report(bench: Bench) -> dict[str, Any]:
    args = bench.args
    results = bench.results
    print_table(results)
    ratios = print_targets(results)
    print("\nAcknowledged = stored (checked in the database):")
    for r in results.values():
        if r.verification:
            print(f"  {r.label}: {r.verification}")
    print_setup(bench)
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": args.seconds,
        "generator": bench.generator.description,
        "settings": {
            "workers": args.workers,
            "loop": args.loop,
            "http": args.http,
            "api_env": dict(args.api_env),
            "batch_clients": args.batch_clients,
            "clients": args.clients,
            "copy_workers": args.copy_workers,
            "copy_chunk": args.copy_chunk,
        },
        "results": {k: asdict(v) for k, v in results.items()},
        "ratios": ratios,
    }


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


def env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name, value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/bench_ingest.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per phase")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per phase")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--clients", type=int, default=64, help="clients for (c), (d), (e)")
    parser.add_argument("--batch-clients", type=int, default=8, help="clients for (b)")
    parser.add_argument("--batch-size", type=int, default=100, help="events per (b) request")
    parser.add_argument(
        "--copy-workers",
        type=int,
        default=None,
        help="COPY connections for (a) (default: the writer's concurrency, 3)",
    )
    parser.add_argument(
        "--copy-chunk", type=int, default=None, help="rows per COPY (default: writer max rows)"
    )
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--install-wrk", action="store_true", help="apt-get install -y wrk")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--py-procs", type=int, default=4, help="processes of the Python generator")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers")
    parser.add_argument("--loop", default="auto", help="uvicorn loop (auto = uvloop)")
    parser.add_argument("--http", default="auto", help="uvicorn http (auto = httptools)")
    parser.add_argument(
        "--api-env",
        type=env_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the API, e.g. LYTICS_WRITER_CONCURRENCY=2 (repeatable)",
    )
    parser.add_argument("--phases", default="abcde", help="which phases to run (default abcde)")
    parser.add_argument("--no-orm", action="store_true", help="skip (e)")
    parser.add_argument(
        "--diagnostics",
        action="store_true",
        help="also time the writer's staging path (batches holding a duplicate) without HTTP",
    )
    parser.add_argument(
        "--quiet-wait",
        type=int,
        default=60,
        help="before each phase, wait up to this many seconds for other work to stop",
    )
    parser.add_argument(
        "--quiet-cores", type=float, default=0.3, help="what counts as idle (cores busy)"
    )
    parser.add_argument("--json-out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.no_orm:
        args.phases = args.phases.replace("e", "")
    # The ceiling writes like the writer: its chunk size and its number of connections.
    if args.copy_chunk is None:
        args.copy_chunk = int(dict(args.api_env).get("LYTICS_WRITER_MAX_ROWS", 500))
    if args.copy_workers is None:
        args.copy_workers = int(dict(args.api_env).get("LYTICS_WRITER_CONCURRENCY", 3))
    if args.seconds < 1 or args.warmup < 1:
        parser.error("--seconds and --warmup are whole seconds, at least 1")
    return args


def pick_generator(args: argparse.Namespace, workdir: Path, authorization: str) -> Generator:
    exe = shutil.which("wrk")
    if exe is None and args.install_wrk and args.generator != "python":
        print("installing wrk: apt-get install -y wrk", flush=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False)
        exe = shutil.which("wrk")
    if args.generator == "wrk" and exe is None:
        raise HarnessError("wrk is not installed (pass --install-wrk, or --generator python)")
    if exe is not None and args.generator != "python":
        return WrkGenerator(exe, args.wrk_threads, workdir, authorization)
    return PythonGenerator(args.py_procs, authorization)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Explicitly for SIGINT too: a shell that starts a job in the background ignores it.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    # Short path: the embedded server's unix socket lives in it.
    tmp = Path(tempfile.mkdtemp(prefix="lytb-", dir="/tmp"))
    try:
        cpu = _cpu_model()
        print(f"machine: {os.cpu_count()} cores, {cpu}; Python {sys.version.split()[0]}")
        with database(args.database_url, tmp) as (url, postgres_pid):
            project_id, write_key = new_project(url)
            authorization = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
            generator = pick_generator(args, tmp, authorization)
            print(f"generator: {generator.description}", flush=True)
            bench = Bench(
                args, tmp, url, libpq_dsn(url), project_id, write_key, generator, postgres_pid
            )
            bench.run()
            summary = report(bench)
            if args.json_out:
                summary["machine"] = {"cores": os.cpu_count(), "cpu": cpu}
                args.json_out.write_text(json.dumps(summary, indent=2, default=str))
            lost = sum(r.lost or 0 for r in bench.results.values())
            return 1 if lost else 0
    except KeyboardInterrupt:
        print("\ninterrupted: every process started here has been stopped", file=sys.stderr)
        return 130
    except HarnessError as exc:
        print(f"benchmark could not run: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
