"""The embedded Postgres used when no DATABASE_URL is configured.

Backed by the `pgserver` wheel (Postgres 16 binaries, unix socket only, no TCP
port). The server outlives the Python process that started it, so whoever
starts it decides when it stops: `EmbeddedPostgres.running()` stops it on exit
only if this call started it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
# pgserver logs every handle's start and exit at INFO, some of it from atexit hooks
# after the process's log streams are closed; only its warnings matter to us.
logging.getLogger("pgserver").setLevel(logging.WARNING)


@dataclass(frozen=True)
class EmbeddedPostgres:
    pgdata: Path

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> EmbeddedPostgres:
        return cls(data_dir.resolve() / "pg")

    def postmaster_pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            # Running as root, pgserver runs Postgres as its own system user.
            return pid
        return pid

    def is_running(self) -> bool:
        return self.postmaster_pid() is not None

    def start(self) -> str:
        """Start (or attach to) the server; returns a SQLAlchemy URL (psycopg 3)."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); harmless here.
            warnings.simplefilter("ignore")
            from pgserver import postgres_server  # heavy: only when the embedded server is used

        self.pgdata.mkdir(parents=True, exist_ok=True)
        # Not pgserver.get_server(): it caches handles per process, so a server
        # stopped and started again in one process would never really restart.
        server = postgres_server.PostgresServer(self.pgdata.resolve(), cleanup_mode=None)
        uri: str = server.get_uri()
        return uri.replace("postgresql://", "postgresql+psycopg://", 1)

    def stop(self, timeout: float = 8.0) -> bool:
        """Fast shutdown (SIGINT to the postmaster). True once the server is gone."""
        pid = self.postmaster_pid()
        if pid is None:
            return True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.postmaster_pid() is None:
                return True
            time.sleep(0.05)
        log.warning("embedded postgres %s did not stop within %.0fs", self.pgdata, timeout)
        return False

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        """The server for the duration of a command; stopped after only if we started it."""
        was_running = self.is_running()
        url = self.start()
        try:
            yield url
        finally:
            if not was_running:
                self.stop()
