"""Publish one partition as a whole: stage, promote, delete stale keys, manifest last.

The order is what readers can rely on:

1. Every new file is uploaded under `{prefix}/_staging/…` while the previous
   version of the partition stays complete and readable. An upload that fails
   here changes nothing a reader sees.
2. The old `_manifest.json` is deleted: from now on readers know the partition
   is being replaced.
3. Staged files are moved to their final keys (server-side copies on S3,
   atomic renames on a local folder), and keys of the old version that are not
   in the new one are deleted, so no stale file survives a re-run.
4. The new `_manifest.json` is written last. A reader that sees a manifest
   sees a complete partition; one without a manifest is incomplete.

Folders starting with `_` are skipped by Hive-style readers (Spark, Athena,
`pyarrow.dataset`), so staging never shows up as data.
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
from lytics.exports.stores import Store
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

    def staging(self, run_id: str) -> str:
        return self._join("_staging", self.relative, run_id)

    @property
    def staging_root(self) -> str:
        return self._join("_staging", self.relative)


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
    # Leftovers of crashed earlier attempts of this partition.
    store.delete(store.list(layout.staging_root + "/"))
    staging = layout.staging(run_id)
    files: list[dict[str, Any]] = []
    started = time.monotonic()
    for part in parts:
        store.upload(part.path, f"{staging}/{part.name}", CONTENT_TYPES[fmt])
        part.path.unlink(missing_ok=True)
        files.append(
            {
                "key": f"{layout.directory}/{part.name}",
                "rows": part.rows,
                "bytes": part.bytes,
                "sha256": part.sha256,
            }
        )
    new_keys = [f["key"] for f in files]
    store.delete([layout.manifest_key])
    for entry in files:
        name = entry["key"].rsplit("/", 1)[1]
        store.move(f"{staging}/{name}", entry["key"])
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


def discard_staging(store: Store, layout: PartitionLayout, run_id: str) -> None:
    """Best effort after a failure: the next attempt clears whatever remains anyway."""
    # Cleanup must never hide the error that made it necessary.
    with contextlib.suppress(Exception):
        store.delete(store.list(layout.staging(run_id) + "/"))
