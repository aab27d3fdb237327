"""The whole platform on one machine: what `lytics dev` runs.

Order matters: Postgres, migrations and the demo project must be in place
before any service starts, and on the way out services stop before Postgres.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import click
import httpx

from lytics.addresses import Served, reachable_host, write_served
from lytics.devserver.bootstrap import (
    REPO_ROOT,
    DemoKeys,
    code_server_workspace,
    dagster_home,
    dagster_url,
    ensure_demo_project,
    migrate_schema,
)
from lytics.devserver.data_dir_lock import DataDirBusyError, DataDirLock
from lytics.devserver.supervisor import Supervisor
from lytics.embedded_postgres import EmbeddedPostgres
from lytics.settings import Settings
from lytics.warehouse.urls import dbt_env, redacted, render, with_driver

# How long a service may take to answer before `lytics dev` gives up (a loaded 2-core
# machine needs minutes: Dagster imports the code location first).
READY_TIMEOUT_S = 300.0
# The code server is for the webserver, the daemon and the runs on this machine only.
CODE_SERVER_HOST = "127.0.0.1"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As the servers bind: a port that only has connections in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError:
            return True
    return False


def service_environment(
    settings: Settings, options: DevOptions, database_url: str
) -> dict[str, str]:
    """The environment of every service `lytics dev` starts."""
    env = dict(os.environ)
    # As an activated virtualenv would: the services find `dbt` (dagster-dbt runs it
    # by name) and Dagster's own commands next to this interpreter.
    bindir = str(Path(sys.executable).parent)
    env.update(
        PATH=os.pathsep.join([bindir, env.get("PATH", "")]),
        PYTHONUNBUFFERED="1",
        DATABASE_URL=render(with_driver(database_url, "psycopg")),
        # dbt's connection (dbt_project/profiles.yml), the same for the project's
        # preparation and every run, so the runs reuse the prepared parse.
        **dbt_env(database_url),
        LYTICS_SECRET_KEY=settings.require_secret_key(),
        LYTICS_DATA_DIR=str(settings.data_path),
    )
    if options.run_dagster:
        home = dagster_home(settings)
        env.update(
            DAGSTER_HOME=str(home),
            LYTICS_DAGSTER_PG_URL=dagster_url(settings, database_url),
            LYTICS_DAGSTER_ARTIFACTS=str(home / "artifacts"),
            LYTICS_DAGSTER_GRAPHQL_URL=f"{options.ui_url}/graphql",
        )
    return env


def prepare_dbt_project(env: dict[str, str]) -> float:
    """dbt's manifest and saved parse, as a deployment prepares them at build time (here on
    every start, so edited models are picked up); returns the seconds it took."""
    bindir = Path(sys.executable).parent
    prepare = [str(bindir / "dagster-dbt"), "project", "prepare-and-package"]
    project = str(REPO_ROOT / "lytics_assets" / "metrics" / "project.py")
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - our own command and file
        [*prepare, "--file", project],
        env=env,
        cwd=str(REPO_ROOT),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise click.ClickException(f"dbt project preparation failed:\n{done.stdout}{done.stderr}")
    return time.monotonic() - started


class StopRequestedError(Exception):
    """A SIGINT or SIGTERM arrived."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequestedError(signal.Signals(signum).name)


@dataclass(frozen=True)
class DevOptions:
    api_host: str
    api_port: int
    dagster_host: str
    dagster_port: int
    run_api: bool = True
    run_dagster: bool = True

    @property
    def api_url(self) -> str:
        return f"http://{reachable_host(self.api_host)}:{self.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{reachable_host(self.dagster_host)}:{self.dagster_port}"

    def ports(self) -> list[tuple[str, str, int]]:
        wanted = []
        if self.run_api:
            wanted.append(("ingest API", self.api_host, self.api_port))
        if self.run_dagster:
            wanted.append(("Dagster UI", self.dagster_host, self.dagster_port))
        return wanted

    def served(self) -> Served:
        return Served(
            api_url=self.api_url if self.run_api else None,
            ui_url=self.ui_url if self.run_dagster else None,
            graphql_url=f"{self.ui_url}/graphql" if self.run_dagster else None,
        )


class DevPlatform:
    def __init__(self, settings: Settings, options: DevOptions) -> None:
        self.settings = settings
        self.options = options
        self.supervisor = Supervisor()
        # Set only when this process started it: a server someone else started keeps running.
        self.embedded: EmbeddedPostgres | None = None
        self.lock = DataDirLock(settings.data_path)
        self.addresses: Path | None = None
        self.started = time.monotonic()

    def run(self) -> int:
        """Run until a signal or a child's death; returns the exit code."""
        # Explicit handlers: a SIGINT inherited as "ignored" must still stop us.
        signal.signal(signal.SIGTERM, _raise_stop)
        signal.signal(signal.SIGINT, _raise_stop)
        try:
            self.lock.acquire()  # before anything is started or stopped
        except DataDirBusyError as busy:
            # Nothing was started, so nothing is stopped: the running instance is untouched.
            click.echo(f"error: {busy}", err=True)
            return 1
        except StopRequestedError:
            return 0
        try:
            if busy_ports := self._busy_ports():
                click.echo(f"error: {busy_ports}", err=True)
                return 1
            self.addresses = write_served(self.settings.data_path, self.options.served())
            database_url = self._database()
            click.echo(f"schema    migrated to {migrate_schema(database_url)}")
            demo = ensure_demo_project(database_url)
            self._start_services(self._environment(database_url))
            self._wait_ready()
            self._announce(demo)
            return self._watch()
        except StopRequestedError as stop:
            click.echo(f"\n{stop}: stopping")
            return 0
        finally:
            self._shutdown()

    def _database(self) -> str:
        if self.settings.database_url is not None:
            url = self.settings.database_url.get_secret_value()
            click.echo(f"postgres  external  {redacted(url)}")
            return url
        embedded = EmbeddedPostgres.in_data_dir(self.settings.data_path)
        already = embedded.postmaster_pid()
        url = embedded.start()
        if already is None:
            self.embedded = embedded
            click.echo(f"postgres  embedded  {embedded.pgdata} (socket only)")
        else:
            click.echo(
                f"postgres  embedded  {embedded.pgdata} (socket only; already running as "
                f"pid {already}, so it is left running on exit)"
            )
        return url

    def _busy_ports(self) -> str | None:
        for what, host, port in self.options.ports():
            if _port_in_use(host, port):
                flag = "--api-port" if what == "ingest API" else "--dagster-port"
                return f"port {port} on {host} ({what}) is in use; choose another with {flag}"
        return None

    def _environment(self, database_url: str) -> dict[str, str]:
        return service_environment(self.settings, self.options, database_url)

    def _start_services(self, env: dict[str, str]) -> None:
        o = self.options
        bindir = Path(sys.executable).parent
        if o.run_api:
            api = [sys.executable, "-m", "lytics_ingest_api", "--host", o.api_host]
            self.supervisor.start("api", [*api, "--port", str(o.api_port)], env)
        if o.run_dagster:
            workspace = str(self._start_code_server(env, bindir))
            webserver = [str(bindir / "dagster-webserver"), "-h", o.dagster_host, "-w", workspace]
            self.supervisor.start(
                "dagster", [*webserver, "-p", str(o.dagster_port)], env, cwd=str(REPO_ROOT)
            )
            daemon = [str(bindir / "dagster-daemon"), "run", "-w", workspace]
            self.supervisor.start("daemon", daemon, env, cwd=str(REPO_ROOT))

    def _start_code_server(self, env: dict[str, str], bindir: Path) -> Path:
        """Prepare the dbt project, start the one code server, return its workspace."""
        took = prepare_dbt_project(env)
        click.echo(f"dbt       project prepared in {took:.1f}s")
        port = _free_port(CODE_SERVER_HOST)
        server = [str(bindir / "dagster"), "code-server", "start", "-h", CODE_SERVER_HOST]
        server += ["-p", str(port), "-m", "lytics_assets.definitions", "--location-name", "lytics"]
        self.supervisor.start("code", server, env, cwd=str(REPO_ROOT))
        # The webserver and the daemon give up on a location they cannot reach at start.
        self._wait_for_port(CODE_SERVER_HOST, port)
        return code_server_workspace(Path(env["DAGSTER_HOME"]), CODE_SERVER_HOST, port)

    def _wait_for_port(self, host: str, port: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and self.supervisor.first_exited() is None:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                if probe.connect_ex((host, port)) == 0:
                    return
            time.sleep(0.2)
        failed = self.supervisor.first_exited()
        raise click.ClickException(
            f"{failed.name} exited during startup" if failed else "the code server did not start"
        )

    def _poll(self, url: str, body: dict[str, object] | None, expect: str) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and self.supervisor.first_exited() is None:
            try:
                if body is None:
                    response = httpx.get(url, timeout=2.0)
                else:
                    response = httpx.post(url, json=body, timeout=2.0)
                if response.status_code == 200 and expect in response.text:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        return False

    def _wait_ready(self) -> None:
        o = self.options
        ready = True
        if o.run_api:
            ready &= self._poll(f"{o.api_url}/health/ready", None, "ready")
        if o.run_dagster:
            ready &= self._poll(f"{o.ui_url}/graphql", {"query": "{ version }"}, "version")
        if not ready:
            failed = self.supervisor.first_exited()
            raise click.ClickException(
                f"{failed.name} exited during startup"
                if failed
                else "services did not become ready"
            )

    def _announce(self, demo: DemoKeys | None) -> None:
        o = self.options
        click.echo(f"\nLytics is ready in {time.monotonic() - self.started:.1f}s")
        if o.run_api:
            click.echo(f"  ingest API  {o.api_url}   (health: /health/ready, OpenAPI: /schema)")
        if o.run_dagster:
            click.echo(f"  Dagster UI  {o.ui_url}   (webserver + daemon)")
        if demo is not None:
            click.echo(
                f"\n  Created project '{demo.project_slug}'. These keys are shown only once:\n"
                f"    write key  (SDKs, public):       {demo.write_key}\n"
                f"    secret key (read API, servers):  {demo.secret_key}\n\n"
                "  Send an event:\n"
                f"    curl -u '{demo.write_key}:' -H 'Content-Type: application/json' \\\n"
                f'      -d \'{{"type":"track","event":"Signed Up","userId":"u1"}}\' '
                f"{o.api_url}/v1/track\n"
            )
        click.echo("Press Ctrl-C to stop.")

    def _watch(self) -> int:
        while (failed := self.supervisor.first_exited()) is None:
            time.sleep(0.2)
        code = failed.process.returncode if failed.process else 1
        click.echo(f"{failed.name} exited with status {code}; stopping everything", err=True)
        return code or 1

    def _shutdown(self) -> None:
        # A second Ctrl-C during shutdown must not interrupt it and leave orphans.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.supervisor.stop()
        if self.embedded is not None:
            self.embedded.stop()
        if self.addresses is not None:
            self.addresses.unlink(missing_ok=True)
        self.lock.release()
        click.echo(f"stopped after {time.monotonic() - self.started:.1f}s")
