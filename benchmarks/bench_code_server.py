"""What one shared Dagster code server saves at idle, against one per process.

`lytics dev` runs one `dagster code-server start` and points the webserver and the
daemon at it (a `grpc_server` workspace entry, as Dagster's deployments do). The
alternative, each of them loading the module itself (`-m lytics_assets.definitions`),
starts a code server per process. This script starts both topologies in turn on one
embedded Postgres (migrated, with Dagster's own database) and, once each is up
(the webserver's GraphQL answers with the location loaded), measures every process
of it over an idle window (`--seconds`, default 60):

  cpu   user + system CPU seconds spent during the window, all processes
  rss   resident memory at the end of the window (shared pages counted per process)
  uss   memory unique to the processes at the end of the window (what stopping
        them would free)

The daemon keeps ticking its sensors and schedules throughout, as in `lytics dev`.
It prints both topologies and the ratios; it asserts nothing.

Run: `.venv/bin/python benchmarks/bench_code_server.py [--seconds 60]`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from lytics.devserver.bootstrap import REPO_ROOT, code_server_workspace, migrate_schema
from lytics.devserver.platform import (
    CODE_SERVER_HOST,
    DevOptions,
    prepare_dbt_project,
    service_environment,
)
from lytics.devserver.supervisor import Supervisor
from lytics.embedded_postgres import EmbeddedPostgres
from lytics.settings import Settings

LOCATION_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries { name
    locationOrLoadError { __typename } } } } }
"""
READY_DEADLINE_S = 300


@dataclass(frozen=True)
class Usage:
    processes: int
    cpu_s: float
    rss_mb: float
    uss_mb: float


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tree(supervisor: Supervisor) -> list[psutil.Process]:
    found: list[psutil.Process] = []
    for child in supervisor.children:
        try:
            root = psutil.Process(child.pid)
            found += [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    return found


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


def _wait_loaded(ui: str, supervisor: Supervisor) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < deadline:
        if (failed := supervisor.first_exited()) is not None:
            raise SystemExit(f"{failed.name} exited during startup")
        try:
            answer = httpx.post(f"{ui}/graphql", json={"query": LOCATION_QUERY}, timeout=5).json()
            entries = answer["data"]["workspaceOrError"]["locationEntries"]
            if [e["locationOrLoadError"]["__typename"] for e in entries] == ["RepositoryLocation"]:
                return
        except (httpx.HTTPError, KeyError, TypeError, ValueError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"the code location did not load within {READY_DEADLINE_S}s")


def _measure(supervisor: Supervisor, seconds: float) -> Usage:
    before = {p.pid: _cpu(p) for p in _tree(supervisor)}
    time.sleep(seconds)  # the idle window being measured
    rss = uss = cpu = 0.0
    processes = _tree(supervisor)
    for process in processes:
        try:
            memory = process.memory_full_info()
        except psutil.NoSuchProcess:
            continue
        rss += memory.rss
        uss += memory.uss
        cpu += _cpu(process) - before.get(process.pid, 0.0)
    return Usage(len(processes), cpu, rss / 2**20, uss / 2**20)


def _topology(name: str, env: dict[str, str], seconds: float) -> Usage:
    bindir = Path(sys.executable).parent
    supervisor = Supervisor(out=open("/dev/null", "w"))  # noqa: SIM115 - lives as long as it
    ui_port = _free_port()
    try:
        if name == "shared":
            port = _free_port()
            server = [str(bindir / "dagster"), "code-server", "start", "-h", CODE_SERVER_HOST]
            server += ["-p", str(port), "-m", "lytics_assets.definitions"]
            supervisor.start("code", [*server, "--location-name", "lytics"], env, str(REPO_ROOT))
            home = Path(env["DAGSTER_HOME"])
            target = ["-w", str(code_server_workspace(home, CODE_SERVER_HOST, port))]
        else:
            target = ["-m", "lytics_assets.definitions"]
        webserver = [str(bindir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(ui_port)]
        supervisor.start("dagster", [*webserver, *target], env, str(REPO_ROOT))
        daemon = [str(bindir / "dagster-daemon"), "run", *target]
        supervisor.start("daemon", daemon, env, str(REPO_ROOT))
        _wait_loaded(f"http://127.0.0.1:{ui_port}", supervisor)
        return _measure(supervisor, seconds)
    finally:
        supervisor.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="idle window per topology")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="lyt-bench-code-"))
    embedded = EmbeddedPostgres.in_data_dir(folder)
    try:
        database_url = embedded.start()
        migrate_schema(database_url)
        settings = Settings(data_dir=folder, environment="development")
        options = DevOptions("127.0.0.1", 0, "127.0.0.1", 0, run_api=False)
        env = service_environment(settings, options, database_url)
        prepare_dbt_project(env)
        results = {name: _topology(name, env, args.seconds) for name in ("shared", "per-process")}
    finally:
        embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)

    print(f"idle window: {args.seconds:.0f} s, webserver + daemon (+ code server)")
    print(f"{'topology':<12} {'processes':>9} {'cpu s':>8} {'rss MB':>8} {'uss MB':>8}")
    for name, u in results.items():
        print(f"{name:<12} {u.processes:>9} {u.cpu_s:>8.2f} {u.rss_mb:>8.0f} {u.uss_mb:>8.0f}")
    shared, separate = results["shared"], results["per-process"]
    print(
        f"shared / per-process: cpu {shared.cpu_s / separate.cpu_s:.2f}, "
        f"rss {shared.rss_mb / separate.rss_mb:.2f}, uss {shared.uss_mb / separate.uss_mb:.2f}"
    )
    print(
        f"saved at idle: {separate.cpu_s - shared.cpu_s:.2f} CPU s per {args.seconds:.0f} s, "
        f"{separate.uss_mb - shared.uss_mb:.0f} MB unique memory"
    )


if __name__ == "__main__":
    main()
