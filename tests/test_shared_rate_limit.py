"""Rate limits shared through Redis: two API processes admit one key's rate between them.

Real parts: two `python -m lytics_ingest_api` processes on their own ports (as two
hosts behind a load balancer), the machine's Redis (127.0.0.1:6379, CI has it too)
and Postgres. The refill rate is slow enough (one token per ten seconds) that what a
slow machine adds to the bound stays far below what a second, unshared bucket would.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from redis import Redis
from sqlalchemy import Engine, text

from lytics.settings import Settings
from lytics_ingest_api.app import create_app
from tests.support import TEST_SECRET
from tests.support.http import free_port, serve
from tests.support.ingest import new_project
from tests.support.wait import wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"
RATE = 0.1
BURST = 10


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis, removed afterwards."""
    name = f"lytics-test-{uuid.uuid4().hex[:12]}"
    yield name
    client = Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)
    client.close()


def _start(database_url: str, prefix: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LYTICS_SECRET_KEY": TEST_SECRET,
        "LYTICS_ENV": "test",
        "LYTICS_REDIS_URL": REDIS_URL,
        "LYTICS_REDIS_PREFIX": prefix,
        "LYTICS_RATE_LIMIT_PER_SECOND": str(RATE),
        "LYTICS_RATE_LIMIT_BURST": str(BURST),
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "lytics_ingest_api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    return process, f"http://127.0.0.1:{port}"


def _ready(base: str, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"the API process exited with {process.returncode}")
    try:
        return httpx.get(f"{base}/health/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def two_hosts(database_url: str, prefix: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    started = [_start(database_url, prefix, tmp_path / f"api-{n}.log") for n in range(2)]
    try:
        for process, base in started:
            wait_until(
                lambda p=process, b=base: _ready(b, p),  # type: ignore[misc]
                f"API at {base} ready",
                detail=lambda: "\n".join(f.read_text()[-2000:] for f in tmp_path.glob("*.log")),
            )
        yield started[0][1], started[1][1]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def _track(base: str, key: str, message_id: str) -> httpx.Response:
    event = {"event": "E", "userId": "u", "messageId": message_id}
    return httpx.post(f"{base}/v1/track", json=event, auth=(key, ""), timeout=60)


def test_two_hosts_admit_one_keys_rate_between_them(
    engine: Engine, two_hosts: tuple[str, str]
) -> None:
    _, write_key, _ = new_project(engine, "site")
    first, second = two_hosts
    started = time.monotonic()
    # The whole burst through the first host...
    answers = [(first, _track(first, write_key, f"a-{n}")) for n in range(BURST)]
    # ...then the second host, whose own bucket would still be full.
    answers += [(second, _track(second, write_key, f"b-{n}")) for n in range(BURST)]
    answers += [(first, _track(first, write_key, f"c-{n}")) for n in range(BURST // 2)]
    elapsed = time.monotonic() - started

    admitted = [(host, a) for host, a in answers if a.status_code == 200]
    refused = [a for _, a in answers if a.status_code == 429]
    assert len(admitted) + len(refused) == len(answers), [a.status_code for _, a in answers]
    refill = math.floor(RATE * elapsed) + 1
    assert len(admitted) <= BURST + refill, (len(admitted), elapsed)
    assert sum(host == second for host, _ in admitted) <= refill
    # Both hosts answer from the same bucket: the second's refusals carry its numbers.
    assert refused
    assert refused[0].headers["RateLimit-Limit"] == str(BURST)
    assert int(refused[0].headers["Retry-After"]) >= 1
    # What was admitted is stored, once; what was refused is not.
    stored = {row.message_id for row in _messages(engine)}
    assert stored == {a.json()["messageId"] for _, a in admitted}


def _messages(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT message_id FROM raw.events")))


def test_without_redis_each_process_limits_on_its_own_and_nothing_is_refused_for_it(
    settings: Settings, engine: Engine, prefix: str
) -> None:
    unreachable = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    limited = settings.model_copy(
        update={
            "redis_url": SecretStr(unreachable),
            "redis_prefix": prefix,
            "rate_limit_per_second": RATE,
            "rate_limit_burst": 3,
        }
    )
    _, write_key, _ = new_project(engine, "site")
    with serve(create_app(limited)) as base:
        before = _fallbacks(base)
        codes = [_track(base, write_key, f"m-{n}").status_code for n in range(5)]
        after = _fallbacks(base)
    assert codes[:3] == [200, 200, 200]
    assert 429 in codes[3:]
    assert after - before == 5


def _fallbacks(base: str) -> float:
    for line in httpx.get(f"{base}/metrics", timeout=60).text.splitlines():
        if line.startswith("lytics_rate_limit_fallbacks_total "):
            return float(line.split()[-1])
    return 0.0
