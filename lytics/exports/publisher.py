"""Publish one partition as a whole: stage, promote, delete stale keys, manifest last.

The order is what readers can rely on:

1. Every new file is staged (`Store.stage`): uploaded but invisible to readers
   (an uncompleted multipart upload at its final key on S3, a file under
   `_staging/` on a folder) while the previous version of the partition stays
   complete and readable. If anything fails here, every file staged so far is
   aborted: nothing a reader sees has changed.
2. The old `_manifest.json` is deleted: from now on readers know the partition
   is being replaced.
3. Staged files are promoted to their final keys (CompleteMultipartUpload on
   S3, no data copied; atomic renames on a folder), and keys of the old version
   that are not in the new one are deleted, so no stale file survives a re-run.
4. The new `_manifest.json` is written last. A reader that sees a manifest
   sees a complete partition; one without a manifest is incomplete.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from lytics.exports.formats import COMPRESSION, CONTENT_TYPES, PartFile
from lytics.exports.stores import Staged, Store
from lytics.exports.windows import Window

MANIFEST = "_manifest.json"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class PartitionLayout:
    prefix: str
    dataset: str
    project_id: int
    window: Window

    def _join(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix.strip("/"), *parts) if p)

    @property
    def relative(self) -> str:
        return f"{self.dataset}/project={self.project_id}/{self.window.hive_path}"

    @property
    def directory(self) -> str:
        """Final keys live under this, followed by `/`."""
        return self._join(self.relative)

    @property
    def manifest_key(self) -> str:
        return f"{self.directory}/{MANIFEST}"


@dataclass(frozen=True)
class Published:
    manifest_key: str
    keys: tuple[str, ...]
    rows: int
    bytes: int
    manifest: dict[str, Any]


def _schema_fields(schema: pa.Schema) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in schema]


def publish(
    store: Store,
    layout: PartitionLayout,
    parts: Iterable[PartFile],
    *,
    fmt: str,
    schema: pa.Schema,
    run_id: str,
    extra: dict[str, Any] | None = None,
) -> Published:
    """Upload `parts` (deleting each local file once staged) and publish them as the partition."""
    # Leftovers of crashed earlier attempts of this partition (one exporter per
    # partition at a time: the runner holds its advisory lock).
    discard_staging(store, layout)
    files: list[dict[str, Any]] = []
    staged: list[Staged] = []
    started = time.monotonic()
    try:
        for part in parts:
            key = f"{layout.directory}/{part.name}"
            staged.append(store.stage(part.path, key, CONTENT_TYPES[fmt]))
            part.path.unlink(missing_ok=True)
            entry = {"key": key, "rows": part.rows, "bytes": part.bytes, "sha256": part.sha256}
            files.append(entry)
        new_keys = [f["key"] for f in files]
        store.delete([layout.manifest_key])
        while staged:
            store.promote(staged[0])
            del staged[0]  # promoted: nothing left to abort for it
    except BaseException:
        # Staged files never reach readers; drop them now rather than leave them billed.
        _abort(store, staged)
        raise
    # Only the partition's own files: a daily `dt=` folder must not take hourly ones with it.
    own = [
        k for k in store.list(layout.directory + "/") if "/" not in k[len(layout.directory) + 1 :]
    ]
    stale = [k for k in own if k not in new_keys and k != layout.manifest_key]
    store.delete(stale)
    manifest = {
        "version": MANIFEST_VERSION,
        "dataset": layout.dataset,
        "project_id": layout.project_id,
        "partition": layout.window.hive_path,
        "window": {
            "frequency": layout.window.frequency,
            "start": layout.window.start.isoformat(),
            "end": layout.window.end.isoformat(),
            "column": "received_at",
        },
        "format": fmt,
        "compression": COMPRESSION[fmt],
        "files": files,
        "rows": sum(f["rows"] for f in files),
        "bytes": sum(f["bytes"] for f in files),
        "schema": _schema_fields(schema),
        "run_id": run_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "upload_seconds": round(time.monotonic() - started, 3),
        **(extra or {}),
    }
    store.put_bytes(
        layout.manifest_key, json.dumps(manifest, indent=2).encode(), "application/json"
    )
    return Published(
        layout.manifest_key, tuple(new_keys), manifest["rows"], manifest["bytes"], manifest
    )


def read_manifest(store: Store, layout: PartitionLayout) -> dict[str, Any] | None:
    data = store.get_bytes(layout.manifest_key)
    return None if data is None else dict(json.loads(data))


def _abort(store: Store, staged: Iterable[Staged]) -> None:
    """Best effort: a file left staged is found and aborted by the next attempt."""
    for file in staged:
        # Cleanup must never hide the error that made it necessary.
        with contextlib.suppress(Exception):
            store.abort(file)


def discard_staging(store: Store, layout: PartitionLayout) -> None:
    """Abort whatever is staged for the partition's keys (after a failure or a crash).

    Best effort: a bucket lifecycle rule `AbortIncompleteMultipartUpload` cleans
    up on S3 whatever no later attempt of the partition does.
    """
    with contextlib.suppress(Exception):
        _abort(store, store.staged_under(layout.directory))
