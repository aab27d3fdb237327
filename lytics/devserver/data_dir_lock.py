"""One `lytics dev` per data folder: an exclusive lock that dies with its process.

`flock` on `<data dir>/dev.lock`: the kernel releases it when the holder exits,
however it exits, so a crash never leaves a stale lock. The file also says who
holds it (pid and command line) for the error a second start prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from pathlib import Path

LOCK_NAME = "dev.lock"


class DataDirBusyError(RuntimeError):
    """Another process holds the data folder's lock."""

    def __init__(self, data_dir: Path, holder: str) -> None:
        super().__init__(
            f"another `lytics dev` ({holder}) is running on {data_dir}; stop it first, "
            "or give this one its own LYTICS_DATA_DIR"
        )


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"pid {info['pid']}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not written its pid yet"


class DataDirLock:
    """Held from `acquire()` until `release()` or the end of the process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Not inheritable (Python's default): the services must not keep the lock alive.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirBusyError(self.data_dir, _holder(self.path)) from None
        holder = {"pid": os.getpid(), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the last descriptor releases the lock
        self._fd = None


def is_held(data_dir: Path) -> bool:
    """Whether a `lytics dev` holds the lock on `data_dir` right now."""
    try:
        fd = os.open(data_dir / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        # A shared lock is refused only while someone holds the exclusive one.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
