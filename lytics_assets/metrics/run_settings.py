"""Per-run values for dbt's Postgres sessions, given as session settings.

The partition window and the raw-event watermark change on every run. Passed as
dbt `--vars` they would invalidate dbt's saved parse and cost a full re-parse of
the project each time; as custom settings (`lytics.*`) in libpq's PGOPTIONS they
reach every connection dbt opens while the parse stays valid. The models read
them with `current_setting` (dbt_project/macros/window.sql).

DbtCliResource copies this process's environment into the dbt subprocess when
`cli()` is called, so the variable is set only around that call, under a lock.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_LOCK = threading.Lock()
# Values go into a space-separated option string: keep them to what a date or an
# id can contain, so nothing can smuggle in a second option.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9_.:+-]+")
_SAFE_NAME = re.compile(r"lytics\.[a-z_]+")


def pgoptions(settings: Mapping[str, str], existing: str = "") -> str:
    """`existing` PGOPTIONS followed by one `-c name=value` per setting."""
    parts = [existing.strip()] if existing.strip() else []
    for name, value in settings.items():
        if not _SAFE_NAME.fullmatch(name) or not _SAFE_VALUE.fullmatch(value):
            raise ValueError(f"unsafe session setting {name}={value!r}")
        parts.append(f"-c {name}={value}")
    return " ".join(parts)


@contextmanager
def session_settings(settings: Mapping[str, str]) -> Iterator[None]:
    """PGOPTIONS carries `settings` for the subprocesses started inside the block."""
    with _LOCK:
        before = os.environ.get("PGOPTIONS")
        os.environ["PGOPTIONS"] = pgoptions(settings, before or "")
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("PGOPTIONS", None)
            else:
                os.environ["PGOPTIONS"] = before
