"""The metrics pipeline against its ceiling, and the time from a 2xx to a refreshed day.

Part 1 (build): one UTC day of N events (default one million) is loaded into
`raw.events` with COPY, then measured in the same run:

  ceiling  a single hand-written GROUP BY over the same raw rows computing the
           day's pageviews, unique visitors, sessions (SDK ids) and conversions;
  ours     the Dagster + dbt path: the dbt assets and checks for that partition,
           i.e. one `dbt build` of every model and test, with the metadata work
           (best of two runs, as the ceiling is the best of three);
  fixed    the same path for a day without events: what a run costs whatever the
           data (dbt's start-up and parse, every node's DDL and queries, Dagster's
           step); best of two, the first of which also pays the in-process imports.

Both paths run dbt through the warm dbt server, as `lytics dev` does (`lytics-dbt
--serve`: dbt imported once, a forked child per invocation); the script then
builds both days once more with dbt started cold, as a deployment without the
server runs it, and prints what the server saves.

It prints the ceiling, both paths, the data-dependent part (ours - fixed) and
the ratios, dbt's own per-model execution time, and the break-even volume: the
events per day at which the whole path would be 2x the ceiling, if the ceiling
and the data-dependent part grow linearly from what this run measured (check
it by running again with that `--events`).

Part 2 (latency, `--latency`): starts `lytics dev` in a fresh data folder, sends
one event through the API and polls the marts until its day shows it: the
time from the 2xx to the refreshed partition with the default sensor interval.

Run: `python benchmarks/bench_pipeline.py [--events 1000000] [--latency] [--no-cold]`.
The script reports; it does not fail on a missed target.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lytics.embedded_postgres import EmbeddedPostgres  # noqa: E402
from lytics.warehouse import migrate  # noqa: E402
from lytics.warehouse.urls import dbt_env, libpq_dsn  # noqa: E402
from lytics_assets.metrics.dbt_server import SERVER_ENV  # noqa: E402
from tests.support.warm_dbt import warm_dbt_server  # noqa: E402

DAY = date(2026, 3, 2)
CONVERSIONS = ("Signed Up", "Purchase")
TRACK_NAMES = ("Signed Up", "Purchase", "Clicked CTA", "Played Video", "Searched")
PATHS = [f"/page/{i}" for i in range(200)]

CEILING = """
SELECT e.project_id,
       count(*) FILTER (WHERE e.type = 'page') AS pageviews,
       count(DISTINCT coalesce(e.anonymous_id, 'user:' || e.user_id)) AS unique_visitors,
       count(DISTINCT e.session_id) AS sessions,
       count(*) FILTER (WHERE e.type = 'track' AND e.event = ANY(%(conversions)s)) AS conversions
FROM raw.events e
WHERE e.timestamp >= %(start)s AND e.timestamp < %(end)s
GROUP BY e.project_id
"""

COPY = (
    "COPY raw.events (project_id, message_id, type, event, anonymous_id, user_id, session_id, "
    "timestamp, received_at, url, path, referrer, utm_source, source, payload) FROM STDIN"
)


def _rows(events: int, seed: int = 7) -> Any:
    """Sessions of a few events each, most with an SDK session id, all inside DAY."""
    rng = random.Random(seed)
    midnight = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    made = 0
    visitors = max(1, events // 20)
    while made < events:
        project = 1 + (made // 7) % 2
        visitor = f"v{rng.randrange(visitors)}"
        session = f"s{uuid.UUID(int=rng.getrandbits(128)).hex}" if rng.random() < 0.8 else None
        at = midnight + timedelta(seconds=rng.randrange(60, 86_000 - 3_600))
        for _ in range(min(rng.randint(1, 8), events - made)):
            page = rng.random() < 0.8
            name = None if page else rng.choice(TRACK_NAMES)
            path = rng.choice(PATHS)
            made += 1
            payload = json.dumps({"type": "page" if page else "track", "anonymousId": visitor})
            yield (
                project,
                f"m{made}",
                "page" if page else "track",
                name,
                visitor,
                None,
                session,
                at,
                at,
                f"https://site.example{path}",
                path,
                "https://google.com/",
                None,
                "segment",
                payload,
            )
            at += timedelta(seconds=rng.randint(5, 600))


def load(url: str, events: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(libpq_dsn(url)) as conn:
        for slug in ("bench-a", "bench-b"):
            conn.execute(
                "INSERT INTO app.projects (slug, name, settings) VALUES (%s, %s, %s)",
                (slug, slug, json.dumps({"conversion_events": list(CONVERSIONS)})),
            )
        with conn.cursor().copy(COPY) as copy:
            for row in _rows(events):
                copy.write_row(row)
        conn.commit()
        conn.execute("ANALYZE raw.events")
    return time.perf_counter() - started


def ceiling(url: str, repeats: int = 3) -> tuple[float, list[Any]]:
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    params = {"start": start, "end": start + timedelta(days=1), "conversions": list(CONVERSIONS)}
    best = float("inf")
    rows: list[Any] = []
    with psycopg.connect(libpq_dsn(url)) as conn:
        for _ in range(repeats):
            began = time.perf_counter()
            rows = conn.execute(CEILING, params).fetchall()
            best = min(best, time.perf_counter() - began)
    return best, rows


class Build(NamedTuple):
    wall: float
    models: float  # dbt's execution time of the models, summed
    per_node: dict[str, float]
    ok: bool
    phases: dict[str, float]  # where the wall time went (see phases())


# dbt's structured log events that close each phase of an invocation, in order.
PHASE_EVENTS = (
    ("Dagster step start; dbt starts (warm: a fork; cold: its imports)", "MainReportVersion"),
    ("dbt registers the Postgres adapter", "AdapterRegistered"),
    ("dbt loads its saved parse", "FoundStats"),
    ("dbt runs the nodes (hooks, models, tests)", "FinishedRunningStats"),
)


def phases(dbt_log: Path, began: float, ended: float) -> dict[str, float]:
    """Seconds per phase of one build, from dbt's own log timestamps (epoch `began`/`ended`)."""
    seen: dict[str, float] = {}
    for line in dbt_log.read_text().splitlines():
        try:
            info = json.loads(line)["info"]
        except (ValueError, KeyError):
            continue
        stamp = datetime.fromisoformat(info["ts"].replace("Z", "+00:00")).timestamp()
        seen.setdefault(info["name"], stamp)
    out: dict[str, float] = {}
    previous = began
    for label, event in PHASE_EVENTS:
        if event in seen:
            out[label] = seen[event] - previous
            previous = seen[event]
    out["dbt writes its artifacts and exits; Dagster's events, metadata and checks"] = (
        ended - previous
    )
    return out


def ours(url: str, day: date = DAY) -> Build:
    import dagster as dg

    os.environ["DATABASE_URL"] = url
    os.environ.update(dbt_env(url))
    from lytics_assets.metrics.assets import build_dbt_assets, dbt_resource
    from lytics_assets.metrics.checks import CHECKS
    from lytics_assets.metrics.project import TARGET_DIR
    from lytics_assets.resources import WarehouseResource

    assets = build_dbt_assets()
    resources = {"dbt": dbt_resource(), "warehouse": WarehouseResource(database_url=url)}
    with dg.DagsterInstance.ephemeral() as instance:
        began_epoch = time.time()
        began = time.perf_counter()
        result = dg.materialize(
            [assets, *CHECKS],
            instance=instance,
            resources=resources,
            partition_key=day.isoformat(),
            raise_on_error=False,
        )
        wall = time.perf_counter() - began
        ended_epoch = time.time()
    results = sorted(
        TARGET_DIR.glob("lytics_dbt-*/run_results.json"), key=lambda p: p.stat().st_mtime
    )
    per_node: dict[str, float] = {}
    spent: dict[str, float] = {}
    if results:
        for node in json.loads(results[-1].read_text())["results"]:
            per_node[node["unique_id"]] = float(node["execution_time"])
        spent = phases(results[-1].with_name("dbt.log"), began_epoch, ended_epoch)
    models = sum(t for uid, t in per_node.items() if uid.startswith("model."))
    return Build(wall, models, per_node, result.success, spent)


def break_even(events: int, ceiling_s: float, marginal_s: float, fixed_s: float) -> str:
    """Events per day at which fixed + data part = 2x ceiling, both growing linearly."""
    headroom = 2 * ceiling_s - marginal_s  # what 2x leaves per `events` for the fixed cost
    if headroom <= 0:
        return "break-even: none (the data-dependent part alone is above 2x the ceiling)"
    needed = events * fixed_s / headroom
    return (
        f"break-even: the whole path reaches 2x the ceiling at ~{needed:,.0f} events per day "
        f"(extrapolated linearly from this run; measure with --events {round(needed, -5):.0f})"
    )


def latency(timeout_s: float = 300.0) -> dict[str, float]:
    """`lytics dev` in a fresh folder: one event in, seconds until its day's mart shows it."""
    folder = Path(tempfile.mkdtemp(prefix="lytl-", dir="/tmp"))
    lytics = str(Path(sys.executable).parent / "lytics")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL",) and not k.startswith("LYTICS_DBT")
    }
    env.update(LYTICS_DATA_DIR=str(folder), LOG_LEVEL="WARNING")
    api_port, ui_port = _free_port(), _free_port()
    log = (folder / "dev.log").open("wb")
    began = time.perf_counter()
    dev = subprocess.Popen(
        [lytics, "dev", "--api-port", str(api_port), "--dagster-port", str(ui_port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=folder,
    )
    try:
        write_key = _wait_for_key(folder / "dev.log", dev, timeout_s)
        ready_s = time.perf_counter() - began
        url = EmbeddedPostgres.in_data_dir(folder).start()
        today = datetime.now(UTC).date().isoformat()
        # The daemon needs a first sensor tick to set its cursor; wait for it, then measure.
        time.sleep(35)
        sent = time.perf_counter()
        answer = httpx.post(
            f"http://127.0.0.1:{api_port}/v1/track",
            json={"event": "Latency Probe", "userId": "probe", "messageId": uuid.uuid4().hex},
            auth=(write_key, ""),
            timeout=10,
        )
        answer.raise_for_status()
        acked = time.perf_counter()
        query = (
            "SELECT coalesce(sum(events), 0) FROM analytics.daily_site_metrics "
            "WHERE metric_date = %s"
        )
        while time.perf_counter() - acked < timeout_s:
            try:
                with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
                    row = conn.execute(query, (today,)).fetchone()
                if row and row[0] >= 1:
                    return {
                        "ready_s": ready_s,
                        "ack_s": acked - sent,
                        "ack_to_mart_s": time.perf_counter() - acked,
                        "warm_dbt_runs": _warm_dbt_runs(folder / "dev.log"),
                    }
            except psycopg.errors.UndefinedTable:
                pass
            time.sleep(1)
        return {
            "ready_s": ready_s,
            "ack_s": acked - sent,
            "ack_to_mart_s": float("inf"),
            "warm_dbt_runs": _warm_dbt_runs(folder / "dev.log"),
        }
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.wait(30)
        log.close()
        EmbeddedPostgres.in_data_dir(folder).stop()
        shutil.rmtree(folder, ignore_errors=True)


def _warm_dbt_runs(log: Path) -> float:
    """dbt invocations `lytics dev`'s warm dbt server started (its log lines)."""
    return float(log.read_text(errors="replace").count(": started pid "))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_key(log: Path, process: subprocess.Popen[bytes], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "Press Ctrl-C to stop." in text:
            match = re.search(r"write key\s+\(SDKs, public\):\s+(\S+)", text)
            if match is None:
                raise RuntimeError("lytics dev printed no demo write key")
            return match.group(1)
        if process.poll() is not None:
            raise RuntimeError(f"lytics dev exited:\n{text}")
        time.sleep(0.5)
    raise RuntimeError("lytics dev did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--latency", action="store_true", help="also measure 2xx -> refreshed mart")
    parser.add_argument("--no-build", action="store_true", help="skip part 1")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-dbt builds")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; Postgres: embedded (pgserver)")
    if not args.no_build:
        folder = Path(tempfile.mkdtemp(prefix="lytp-", dir="/tmp"))
        server = EmbeddedPostgres.in_data_dir(folder)
        try:
            url = server.start()
            migrate.upgrade(url)
            loaded = load(url, args.events)
            print(f"loaded {args.events:,} events for {DAY} in {loaded:.1f}s (COPY)")
            best, rows = ceiling(url)
            with warm_dbt_server() as warm:
                os.environ[SERVER_ENV] = str(warm.socket)
                empty_runs = [ours(url, DAY + timedelta(days=7)) for _ in range(2)]
                runs = [ours(url) for _ in range(2)]
                os.environ.pop(SERVER_ENV)
                served = warm.runs()
            if served < len(empty_runs) + len(runs):
                print(f"warning: the warm server ran {served} of the builds; the rest ran cold")
            cold = [] if args.no_cold else [ours(url, DAY + timedelta(days=7)).wall, ours(url).wall]
            fixed = min(run[0] for run in empty_runs)
            fixed_ok = all(run[3] for run in empty_runs)
            wall, models, per_node, ok, _ = min(runs, key=lambda run: run.wall)
            ok = ok and fixed_ok and all(run[3] for run in runs)
            marginal = wall - fixed
            print(f"\n{'path':<48}{'seconds':>10}{'x ceiling':>12}")
            for label, seconds in (
                ("ceiling: one hand-written GROUP BY", best),
                ("dbt models only (run_results execution)", models),
                (f"Dagster + dbt build, {args.events:,}-event day (ours)", wall),
                ("the same for a day without events (fixed)", fixed),
                ("ours - fixed: the part that grows with data", marginal),
            ):
                print(f"{label:<48}{seconds:>10.2f}{seconds / best:>12.2f}")
            print(
                f"runs: {', '.join(f'{run[0]:.2f}s' for run in runs)}; "
                f"empty-day runs: {', '.join(f'{run[0]:.2f}s' for run in empty_runs)}; "
                f"succeeded: {ok}; "
                f"target <= 2x ceiling: "
                f"{'PASS' if wall <= 2 * best else 'MISS'} (whole path), "
                f"{'PASS' if marginal <= 2 * best else 'MISS'} (data-dependent part)"
            )
            if cold:
                print(
                    f"dbt started cold (no server): day without events {cold[0]:.2f}s, "
                    f"{args.events:,}-event day {cold[1]:.2f}s ({cold[1] / best:.2f}x ceiling); "
                    f"the warm server saves {cold[0] - fixed:.2f}s and {cold[1] - wall:.2f}s"
                )
            print(break_even(args.events, best, marginal, fixed))
            print("where the fixed cost goes (the best day-without-events run):")
            for label, seconds in min(empty_runs, key=lambda run: run.wall).phases.items():
                print(f"  {label:<72}{seconds:>6.2f}s")
            slowest = sorted(per_node.items(), key=lambda kv: -kv[1])[:6]
            print(
                "slowest dbt nodes: "
                + ", ".join(f"{k.split('.')[-1]} {v:.2f}s" for k, v in slowest)
            )
            print(f"ceiling rows: {[tuple(r) for r in rows]}")
        finally:
            server.stop()
            shutil.rmtree(folder, ignore_errors=True)
    if args.latency:
        result = latency()
        print(
            f"\nlytics dev ready in {result['ready_s']:.1f}s; event acknowledged in "
            f"{result['ack_s'] * 1000:.0f} ms; "
            f"2xx -> refreshed mart in {result['ack_to_mart_s']:.1f}s "
            f"(target <= 120 s: {'PASS' if result['ack_to_mart_s'] <= 120 else 'MISS'}); "
            f"dbt invocations through the warm server: {result['warm_dbt_runs']:.0f}"
        )


if __name__ == "__main__":
    main()
