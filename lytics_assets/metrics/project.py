"""The dbt project: where it lives, its manifest, and how dbt reaches Postgres."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from lytics.warehouse.urls import dbt_env

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
TARGET_DIR = DBT_DIR / "target"
MANIFEST = TARGET_DIR / "manifest.json"
# dbt itself, behind a launcher that answers `--version` cheaply (see dbt_launcher).
DBT_EXECUTABLE = str(Path(sys.executable).parent / "lytics-dbt")
_SOURCES = ("dbt_project.yml", "profiles.yml", "models", "macros", "tests")


def _newest_source_mtime() -> float:
    newest = 0.0
    for name in _SOURCES:
        path = DBT_DIR / name
        files = [path] if path.is_file() else path.rglob("*") if path.exists() else []
        for file in files:
            newest = max(newest, file.stat().st_mtime)
    return newest


# What the saved parse was made for. dbt's partial parse (target/partial_parse.msgpack,
# which dagster-dbt copies into every run) is only reused when the connection profile
# matches; parsed for another database, every run would re-parse from scratch.
PARSED_FOR = TARGET_DIR / ".parsed_for"


def _connection_fingerprint() -> str:
    settings = json.dumps(sorted(dbt_environment().items()))
    return hashlib.sha256(settings.encode()).hexdigest()


def manifest_is_current() -> bool:
    return (
        MANIFEST.exists()
        and MANIFEST.stat().st_mtime >= _newest_source_mtime()
        and PARSED_FOR.exists()
        and PARSED_FOR.read_text() == _connection_fingerprint()
    )


def ensure_manifest() -> Path:
    """Parse the project when the manifest is missing, older than the models or
    parsed for another database (~3 s).

    The webserver and the daemon load the code location at the same moment; a
    file lock makes one of them parse while the other waits for the result.
    """
    if manifest_is_current():
        return MANIFEST
    TARGET_DIR.mkdir(parents=True, exist_ok=True)
    with (TARGET_DIR / ".parse.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not manifest_is_current():
            subprocess.run(  # noqa: S603 - our own dbt, our own arguments
                [
                    DBT_EXECUTABLE,
                    "parse",
                    "--project-dir",
                    str(DBT_DIR),
                    "--profiles-dir",
                    str(DBT_DIR),
                    "--target-path",
                    str(TARGET_DIR),
                    "--quiet",
                ],
                check=True,
                env={**os.environ, **dbt_environment()},
                cwd=DBT_DIR,
            )
            PARSED_FOR.write_text(_connection_fingerprint())
    return MANIFEST


def dbt_environment() -> dict[str, str]:
    """What profiles.yml reads: the connection, derived from DATABASE_URL, and the threads.

    One thread per core by default: on a two-core machine four threads made a
    million-event build ~0.5-1 s slower than two (docs/benchmarks.md), the extra
    queries only contending with the heavy ones for the same cores.
    """
    url = os.environ.get("DATABASE_URL")
    threads = os.environ.get("LYTICS_DBT_THREADS") or str(os.cpu_count() or 2)
    return {**(dbt_env(url) if url else {}), "LYTICS_DBT_THREADS": threads}
