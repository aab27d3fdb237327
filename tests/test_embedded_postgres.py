"""The embedded Postgres: starts in a folder, reuses data, stops only what it started."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from lytics.embedded_postgres import EmbeddedPostgres
from lytics.warehouse.urls import libpq_dsn


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="lyt-e-", dir="/tmp"))
    yield path
    EmbeddedPostgres.in_data_dir(path).stop()
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_start_reuse_and_stop(folder: Path) -> None:
    server = EmbeddedPostgres.in_data_dir(folder)
    assert not server.is_running()
    url = server.start()
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (v int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    assert server.stop()
    assert not server.is_running()
    # Second start: same data folder, same data.
    url = server.start()
    with psycopg.connect(libpq_dsn(url)) as conn:
        assert conn.execute("SELECT v FROM kept").fetchone() == (42,)
    assert server.stop()


@pytest.mark.slow
def test_running_stops_only_a_server_it_started(folder: Path) -> None:
    server = EmbeddedPostgres.in_data_dir(folder)
    with server.running():
        assert server.is_running()
    assert not server.is_running()
    server.start()
    with server.running():
        pass
    assert server.is_running(), "a server someone else started must be left running"
