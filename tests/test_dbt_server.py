"""The warm dbt server: the same dbt, the same answers, started without the import cost.

What must hold: a command run through the server behaves as the cold command
does (output, exit code, working directory, environment); a request the server
cannot serve runs cold instead of failing; a cancelled or abandoned run stops
its queries; only this user can reach the server; a bad request does not take
the server down.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from lytics.warehouse.urls import dbt_env, libpq_dsn
from lytics_assets.metrics import dbt_server
from lytics_assets.metrics.project import DBT_DIR, DBT_EXECUTABLE
from tests.support.warm_dbt import WarmDbt, warm_dbt_server

pytestmark = pytest.mark.slow

LIST_MODELS = ["ls", "--resource-type", "model", "--output", "name", "--quiet"]


@pytest.fixture(scope="module")
def server() -> Iterator[WarmDbt]:
    with warm_dbt_server() as running:
        yield running


def _start(
    args: list[str],
    *,
    warm: Path | None,
    target: Path,
    cwd: Path = DBT_DIR,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """`lytics-dbt ARGS` writing to `target`, through the server listening on `warm`."""
    environment = {k: v for k, v in os.environ.items() if k != dbt_server.SERVER_ENV}
    environment.update(env or {}, DBT_TARGET_PATH=str(target))
    if warm is not None:
        environment[dbt_server.SERVER_ENV] = str(warm)
    return subprocess.Popen(
        [DBT_EXECUTABLE, *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _dbt(args: list[str], *, warm: Path | None, target: Path) -> subprocess.CompletedProcess[str]:
    client = _start(args, warm=warm, target=target)
    try:
        stdout, stderr = client.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        client.kill()
        raise
    return subprocess.CompletedProcess(client.args, client.returncode, stdout, stderr)


def test_a_warm_command_answers_as_the_cold_one(server: WarmDbt, tmp_path: Path) -> None:
    before = server.runs()
    cold = _dbt(LIST_MODELS, warm=None, target=tmp_path / "cold")
    warm = _dbt(LIST_MODELS, warm=server.socket, target=tmp_path / "warm")
    assert server.runs() == before + 1, server.output()
    assert (warm.returncode, cold.returncode) == (0, 0), warm.stderr + cold.stderr
    assert sorted(warm.stdout.split()) == sorted(cold.stdout.split())
    assert {"stg_events", "fct_sessions", "daily_site_metrics"} <= set(warm.stdout.split())


def test_the_callers_directory_and_environment_reach_dbt(server: WarmDbt, tmp_path: Path) -> None:
    # No --project-dir: dbt finds the project in its working directory, which the
    # server's is not; DBT_TARGET_PATH exists only in the caller's environment.
    target = tmp_path / "from-env"
    answer = _dbt(LIST_MODELS, warm=server.socket, target=target)
    assert answer.returncode == 0, answer.stderr
    assert (target / "manifest.json").exists()


def test_a_failing_command_keeps_its_exit_code_and_message(server: WarmDbt, tmp_path: Path) -> None:
    cold = _dbt(["build", "--no-such-flag"], warm=None, target=tmp_path)
    before = server.runs()
    warm = _dbt(["build", "--no-such-flag"], warm=server.socket, target=tmp_path)
    assert server.runs() == before + 1
    assert warm.returncode == cold.returncode == 2
    assert "No such option" in warm.stderr
    assert warm.stderr == cold.stderr


def test_without_a_server_the_command_runs_cold(tmp_path: Path) -> None:
    answer = _dbt(LIST_MODELS, warm=tmp_path / "nobody-listens.sock", target=tmp_path / "t")
    assert answer.returncode == 0, answer.stderr
    assert "fct_sessions" in answer.stdout.split()


def test_a_server_for_another_dbt_refuses_and_the_caller_runs_cold(
    server: WarmDbt, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An upgrade leaves the old server running until `lytics dev` restarts: its dbt
    # must not serve the new one's commands.
    monkeypatch.setattr(dbt_server, "dbt_version", lambda: "0.0.1")
    assert dbt_server.run_remote(str(server.socket), ["--help"]) is None
    assert "request refused: another dbt or interpreter" in server.output()


def test_the_server_warms_up_and_keeps_nothing_a_fork_must_not_share(server: WarmDbt) -> None:
    assert "warmed up by `dbt parse`" in server.output()
    assert "(exit codes [0, 0])" in server.output(), server.output()
    process = psutil.Process(server.process.pid)
    # Forked children would share these with the server and with each other; a
    # thread (native ones included) would be missing in them.
    assert process.num_threads() == 1
    # Its listener (and a request being read) and nothing else: no database connection.
    sockets = process.net_connections(kind="unix")
    assert {(c.laddr, c.raddr) for c in sockets} == {(str(server.socket), "")}
    assert process.net_connections(kind="inet") == []


def test_a_full_parse_in_a_warm_child_finishes(server: WarmDbt, tmp_path: Path) -> None:
    # A new target folder has no saved parse: dbt parses every model, with its static
    # parser (a native thread pool), in the child. It hung when the warm-up had
    # started that pool in the server before the fork.
    answer = _dbt(["parse", "--quiet"], warm=server.socket, target=tmp_path / "fresh")
    assert answer.returncode == 0, answer.stderr
    assert (tmp_path / "fresh" / "manifest.json").exists()


def test_fork_hazards_are_found() -> None:
    # What the server checks after its warm-up; it starts again without one if any.
    probe = (
        "import socket, threading, time\n"
        "from lytics_assets.metrics.dbt_server import _fork_hazards\n"
        "assert _fork_hazards() == '', _fork_hazards()\n"
        "s = socket.socket()\n"
        "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
        "print(_fork_hazards())\n"
        # A native thread pool, as dbt's static parser starts: invisible to `threading`.
        "from dbt_extractor import py_extract_from_source\n"
        "py_extract_from_source('select 1')\n"
        "time.sleep(0.2)\n"
        "print(threading.active_count(), _fork_hazards())\n"
    )
    answer = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    first, native = answer.stdout.splitlines()
    assert "1 thread(s)" in first
    assert "a socket (fd" in first
    python_threads, hazards = native.split(" ", 1)
    assert int(hazards.split()[0]) > int(python_threads) - 1, native


def test_only_this_user_can_reach_the_server(server: WarmDbt) -> None:
    mode = stat.S_IMODE(server.socket.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert server.socket.is_socket()


def test_a_malformed_request_does_not_take_the_server_down(server: WarmDbt, tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
        conn.connect(str(server.socket))
        socket.send_fds(conn, [b"{not json"], [0, 1, 2])
        assert conn.recv(256) == b""  # dropped, no child started
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
        conn.connect(str(server.socket))  # and one that hangs up at once
    request = {
        "dbt": dbt_server.dbt_version(),
        "python": sys.executable,
        "argv": [],
        "cwd": "/",
        "env": {},
    }
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as conn:
        conn.connect(str(server.socket))
        socket.send_fds(conn, [json.dumps(request).encode()], [0, 1])  # stderr missing
        assert conn.recv(256).startswith(b"refused")
    assert "request dropped" in server.output()
    answer = _dbt(LIST_MODELS, warm=server.socket, target=tmp_path)
    assert answer.returncode == 0, answer.stderr
    assert server.process.poll() is None


def test_a_caller_that_sends_nothing_does_not_hold_up_the_others(
    server: WarmDbt, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as silent:
        silent.connect(str(server.socket))
        began = time.monotonic()
        answer = _dbt(LIST_MODELS, warm=server.socket, target=tmp_path)
        waited = time.monotonic() - began
    assert answer.returncode == 0, answer.stderr
    assert "fct_sessions" in answer.stdout.split()
    # Served after the silent caller timed out, not after it hung up.
    assert waited < dbt_server.REQUEST_TIMEOUT_S + 30


def test_runs_started_together_all_finish(server: WarmDbt, tmp_path: Path) -> None:
    before = server.runs()
    clients = [_start(LIST_MODELS, warm=server.socket, target=tmp_path / f"t{i}") for i in range(3)]
    outputs = [client.communicate(timeout=120) for client in clients]
    assert [client.returncode for client in clients] == [0, 0, 0], outputs
    assert all("fct_sessions" in out.split() for out, _ in outputs)
    assert server.runs() == before + 3


def _sleeping(database_url: str) -> int:
    with psycopg.connect(libpq_dsn(database_url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600)%' "
            "AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _start_long_query(server: WarmDbt, database_url: str, tmp_path: Path) -> subprocess.Popen[str]:
    args = ["show", "--inline", "select pg_sleep(600)", "--project-dir", str(DBT_DIR)]
    client = _start(
        [*args, "--profiles-dir", str(DBT_DIR)],
        warm=server.socket,
        target=tmp_path / "t",
        cwd=tmp_path,
        env=dbt_env(database_url),
    )
    deadline = time.monotonic() + 60
    while _sleeping(database_url) == 0:
        assert client.poll() is None, client.communicate()
        assert time.monotonic() < deadline, "the query never started"
        time.sleep(0.2)
    return client


def _wait_until_gone(database_url: str, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while _sleeping(database_url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _sleeping(database_url) == 0, "dbt's query is still running"


def test_a_cancelled_warm_run_stops_its_query(
    server: WarmDbt, database_url: str, tmp_path: Path
) -> None:
    # dagster-dbt cancels a run by sending SIGINT to the dbt command.
    client = _start_long_query(server, database_url, tmp_path)
    client.send_signal(signal.SIGINT)
    client.communicate(timeout=30)
    assert client.returncode != 0
    _wait_until_gone(database_url, 15)


def test_a_run_whose_caller_died_stops_its_query(
    server: WarmDbt, database_url: str, tmp_path: Path
) -> None:
    client = _start_long_query(server, database_url, tmp_path)
    client.kill()
    client.communicate(timeout=10)
    _wait_until_gone(database_url, 15)
    assert server.process.poll() is None
