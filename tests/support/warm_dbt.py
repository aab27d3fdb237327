"""A warm dbt server (`lytics-dbt --serve`) for tests, as `lytics dev` runs one."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lytics_assets.metrics.project import DBT_EXECUTABLE

READY_TIMEOUT_S = 60.0


@dataclass
class WarmDbt:
    socket: Path
    log: Path
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def runs(self) -> int:
        """How many dbt children the server has started."""
        return self.output().count(": started pid ")

    def wait_ready(self) -> WarmDbt:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while " warm on " not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the warm dbt server did not start:\n{self.output()}")
            time.sleep(0.05)
        return self


@contextmanager
def warm_dbt_server(*, wait: bool = True) -> Iterator[WarmDbt]:
    """A running server; with `wait=False` it may still be importing dbt when this
    yields (callers run dbt cold until it listens)."""
    # Not pytest's tmp_path: its long names can overflow a unix socket's path.
    folder = Path(tempfile.mkdtemp(prefix="lytd-", dir="/tmp"))
    socket, log = folder / "dbt.sock", folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [DBT_EXECUTABLE, "--serve", str(socket)], stdout=out, stderr=subprocess.STDOUT
        )
    server = WarmDbt(socket, log, process)
    try:
        yield server.wait_ready() if wait else server
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
