"""Acknowledged means durable, under a Postgres restart and under SIGTERM.

What must hold: every messageId that got a 2xx is in raw.events exactly once
afterwards; nothing gets a 2xx while the database is down; the service
recovers on its own when the database returns.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from lytics.embedded_postgres import EmbeddedPostgres
from lytics.settings import Settings
from lytics.warehouse import migrate
from lytics.warehouse.engine import create_sync_engine
from lytics_ingest_api.app import create_app
from tests.support.http import free_port, serve
from tests.support.ingest import new_project


@dataclass
class Answer:
    ids: list[str]
    status: int
    sent: float
    answered: float


@dataclass
class Load:
    base: str
    write_key: str
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def worker(self, n: int) -> None:
        seq = 0
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                ids = [f"w{n}-{seq}-{i}" for i in range(10)]
                seq += 1
                batch = {
                    "batch": [
                        {"type": "track", "event": "E", "userId": "u", "messageId": m} for m in ids
                    ]
                }
                sent = time.monotonic()
                try:
                    status = client.post(
                        f"{self.base}/v1/batch", json=batch, auth=(self.write_key, "")
                    ).status_code
                except httpx.HTTPError:
                    status = 0  # connection reset: not an acknowledgement
                with self.lock:
                    self.answers.append(Answer(ids, status, sent, time.monotonic()))

    def run(self, workers: int) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self.worker, args=(n,), daemon=True) for n in range(workers)
        ]
        for t in threads:
            t.start()
        return threads


@pytest.fixture
def own_postgres() -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A server this test may stop and start (not the suite's shared one)."""
    folder = Path(tempfile.mkdtemp(prefix="lyt-r-", dir="/tmp"))
    server = EmbeddedPostgres.in_data_dir(folder)
    url = server.start()
    migrate.upgrade(url)
    try:
        yield server, url
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _stored(url: str) -> dict[str, int]:
    engine = create_sync_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT message_id, count(*) FROM raw.events GROUP BY 1"))
            return {m: c for m, c in rows}
    finally:
        engine.dispose()


@pytest.mark.slow
def test_postgres_restart_during_load_loses_no_acknowledged_event(
    own_postgres: tuple[EmbeddedPostgres, str],
) -> None:
    server, url = own_postgres
    engine = create_sync_engine(url)
    _, write_key, _ = new_project(engine, "site")
    engine.dispose()
    # The load runs flat out; the rate limiter is not what this test is about.
    settings = Settings(
        database_url=url, secret_key="k", environment="test", rate_limit_per_second=0
    )
    with serve(create_app(settings)) as base:
        load = Load(base, write_key)
        threads = load.run(workers=6)
        time.sleep(2.0)
        assert server.stop()
        down_from = time.monotonic()
        time.sleep(3.0)
        down_until = time.monotonic()
        server.start()
        time.sleep(4.0)
        load.stop.set()
        for t in threads:
            t.join(40)

    stored = _stored(url)
    acknowledged = [a for a in load.answers if 200 <= a.status < 300]
    refused = [a for a in load.answers if a.status == 503]
    acked_ids = [m for a in acknowledged for m in a.ids]
    assert acked_ids, "the load produced no acknowledged requests"
    assert refused, "the outage produced no 503"
    # Every acknowledged event is there, exactly once.
    assert [m for m in acked_ids if stored.get(m) != 1] == []
    assert all(count == 1 for count in stored.values())
    # Nothing was acknowledged for a request made and answered entirely during the outage.
    during = [a for a in acknowledged if a.sent > down_from + 0.5 and a.answered < down_until]
    assert during == []
    # The service recovered without help: acknowledgements resumed after the restart.
    assert any(a.sent > down_until for a in acknowledged)
    assert {a.status for a in load.answers} <= {200, 503}


@pytest.mark.slow
def test_sigterm_answers_in_flight_requests_and_loses_nothing(
    own_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    _, url = own_postgres
    engine = create_sync_engine(url)
    _, write_key, _ = new_project(engine, "site")
    engine.dispose()
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "LYTICS_SECRET_KEY": "k", "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lytics_ingest_api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "api.log").open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        load = Load(base, write_key)
        threads = load.run(workers=6)
        time.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.wait(15) in (0, -signal.SIGTERM), (tmp_path / "api.log").read_text()
        load.stop.set()
        for t in threads:
            t.join(40)
    finally:
        if process.poll() is None:
            process.kill()
    stored = _stored(url)
    acked_ids = [m for a in load.answers if a.status == 200 for m in a.ids]
    assert len(acked_ids) > 50
    assert [m for m in acked_ids if stored.get(m) != 1] == []
