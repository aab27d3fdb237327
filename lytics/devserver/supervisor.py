"""A small process supervisor: start children, prefix their output, stop them all.

Each child runs in its own process group so that a stop reaches the
grandchildren too (Dagster's webserver and daemon start code servers).
If any child dies, everything stops: a half-running platform is worse
than a clear failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    def __init__(self, out: IO[str] | None = None) -> None:
        self.children: list[Child] = []
        self._out = out or sys.stdout
        self._lock = threading.Lock()
        self._width = 8

    def _print(self, name: str, line: str) -> None:
        with self._lock:
            self._out.write(f"{name:<{self._width}}| {line}")
            if not line.endswith("\n"):
                self._out.write("\n")
            self._out.flush()

    def _pump(self, child: Child, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self._print(child.name, raw.decode(errors="replace"))
        stream.close()

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: str | None = None
    ) -> Child:
        child = Child(name, argv, env, cwd)
        shim = [sys.executable, "-m", "lytics.devserver.default_signals", *argv]
        child.process = subprocess.Popen(  # noqa: S603 - argv is built by lytics itself
            shim,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        assert child.process.stdout is not None
        threading.Thread(target=self._pump, args=(child, child.process.stdout), daemon=True).start()
        self.children.append(child)
        self._width = max(self._width, len(name) + 1)
        return child

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if not c.alive()), None)

    def stop(self, timeout: float = 7.0) -> None:
        """SIGTERM every process group, then SIGKILL whatever is left after `timeout`."""
        for child in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            assert child.process is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(max(0.0, deadline - time.monotonic()))
        for child in self.children:
            # The leader may be gone while grandchildren linger in its group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            assert child.process is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(2)
