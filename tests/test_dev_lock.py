"""`lytics dev` claims its data folder and ports before it starts or stops anything,
and tells every other command where it serves."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lytics.addresses import Served, served_addresses, write_served
from lytics.devserver.data_dir_lock import DataDirBusyError, DataDirLock, is_held
from lytics.devserver.platform import DevOptions, DevPlatform
from lytics.settings import Settings
from tests.support.http import free_port

HOLD_LOCK = """
import sys, time
from pathlib import Path
from lytics.devserver.data_dir_lock import DataDirLock
DataDirLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the data folder's lock until its stdin closes."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def _platform(data_dir: Path, api_port: int, **options: bool) -> DevPlatform:
    settings = Settings(data_dir=data_dir, environment="development")
    return DevPlatform(
        settings,
        DevOptions("127.0.0.1", api_port, "127.0.0.1", free_port(), run_dagster=False, **options),
    )


def test_a_second_lock_names_the_holder_and_dies_with_it(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    assert is_held(tmp_path)
    with pytest.raises(DataDirBusyError, match=f"pid {holder.pid}: "):
        DataDirLock(tmp_path).acquire()
    holder.kill()  # no clean exit: the kernel releases the lock anyway
    holder.wait()
    assert not is_held(tmp_path)
    lock = DataDirLock(tmp_path)
    lock.acquire()
    assert is_held(tmp_path)
    lock.release()
    assert not is_held(tmp_path)


def test_dev_refuses_a_held_data_dir_before_touching_postgres(
    tmp_path: Path, holder: subprocess.Popen[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = _platform(tmp_path, free_port()).run()
    assert code == 1
    assert f"another `lytics dev` (pid {holder.pid}" in capsys.readouterr().err
    assert not (tmp_path / "pg").exists(), "nothing may be started"
    assert holder.poll() is None
    assert is_held(tmp_path)


def test_dev_refuses_a_port_in_use_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = _platform(tmp_path, port).run()
    assert code == 1
    assert f"port {port} on 127.0.0.1 (ingest API) is in use" in capsys.readouterr().err
    assert not (tmp_path / "pg").exists()
    assert not (tmp_path / "addresses.json").exists()
    assert not is_held(tmp_path), "the lock is released on the way out"


def test_commands_find_the_addresses_a_running_dev_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LYTICS_API_PORT", "LYTICS_DAGSTER_PORT", "LYTICS_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("LYTICS_DAGSTER_GRAPHQL_URL", raising=False)
    settings = Settings(data_dir=tmp_path)
    default = served_addresses(settings)
    assert default.api_url == "http://127.0.0.1:8000"
    assert default.graphql_url == "http://127.0.0.1:3000/graphql"

    lock = DataDirLock(tmp_path)
    lock.acquire()
    served = Served(
        "http://127.0.0.1:8123", "http://127.0.0.1:3123", "http://127.0.0.1:3123/graphql"
    )
    write_served(tmp_path, served)
    found = served_addresses(settings)
    assert found.api_url == "http://127.0.0.1:8123"
    assert found.public_url == "http://127.0.0.1:8123"  # links in emails follow the API
    assert found.ui_url == "http://127.0.0.1:3123"
    assert found.graphql_url == settings.graphql_url == "http://127.0.0.1:3123/graphql"

    # Explicit settings win over what is served.
    explicit = Settings(data_dir=tmp_path, public_url="https://lytics.example", api_port=9)
    assert served_addresses(explicit).public_url == "https://lytics.example"
    assert served_addresses(explicit).api_url == "http://127.0.0.1:9"
    monkeypatch.setenv("LYTICS_DAGSTER_GRAPHQL_URL", "http://dagster:3000/graphql")
    assert Settings(data_dir=tmp_path).graphql_url == "http://dagster:3000/graphql"

    # A file left behind by a killed instance is ignored: its lock died with it.
    lock.release()
    assert json.loads((tmp_path / "addresses.json").read_text())["api_url"].endswith(":8123")
    assert served_addresses(settings).api_url == "http://127.0.0.1:8000"
