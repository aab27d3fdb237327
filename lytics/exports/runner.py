"""Export one dataset's window to every destination that wants it.

Each (destination, project) pair is a unit with its own outcome: a failing
client bucket does not stop the backup copy, and the unit is recorded as
failed for that destination only. A re-run skips units whose last export
succeeded from the same source rows (same count and highest id) and whose
manifest is still there, so it redoes exactly what failed or changed.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, select, text

from lytics.crypto import InvalidToken
from lytics.exports import source, state
from lytics.exports.datasets import Dataset
from lytics.exports.datasets import dataset as get_dataset
from lytics.exports.destinations import (
    Destination,
    ensure_default_backup,
    list_destinations,
    open_store,
)
from lytics.exports.formats import write_parts
from lytics.exports.publisher import PartitionLayout, discard_staging, publish, read_manifest
from lytics.exports.state import PartitionId
from lytics.exports.stores import Store, StoreError
from lytics.exports.windows import Window
from lytics.settings import MissingSettingError, Settings
from lytics.warehouse.engine import create_sync_engine
from lytics.warehouse.exports_tables import partitions
from lytics.warehouse.tables import projects

log = logging.getLogger(__name__)
MB = 1024 * 1024

UnitStatus = Literal["exported", "skipped", "failed"]
Fingerprint = tuple[int, int | None]  # (rows, highest id) of a partition's source


@dataclass(frozen=True)
class ExportRequest:
    dataset: str
    window: Window
    run_id: str
    # Only this project's own destinations (a client's request); None: all, backups included.
    project_id: int | None = None
    fmt: str | None = None
    # Re-export even partitions whose source has not changed since their last export.
    force: bool = False
    # Only this destination (an operator re-exporting to one bucket, the benchmark).
    destination_id: int | None = None


@dataclass(frozen=True)
class UnitResult:
    destination_id: int
    destination: str
    location: str
    project_id: int
    status: UnitStatus
    rows: int = 0
    bytes: int = 0
    keys: tuple[str, ...] = ()
    manifest_key: str | None = None
    seconds: float = 0.0
    error: str | None = None
    permanent: bool = False


@dataclass
class ExportReport:
    request: ExportRequest
    units: list[UnitResult] = field(default_factory=list)

    @property
    def failed(self) -> list[UnitResult]:
        return [u for u in self.units if u.status == "failed"]

    @property
    def rows(self) -> int:
        return sum(u.rows for u in self.units if u.status != "failed")

    @property
    def bytes(self) -> int:
        return sum(u.bytes for u in self.units if u.status != "failed")


def source_counts(engine: Engine, ds: Dataset, window: Window) -> dict[int, tuple[int, int]]:
    """Rows and highest id per project in the window, as the source holds them now."""
    with engine.connect() as conn:
        rows = conn.execute(text(ds.counts_sql()), {"start": window.start, "end": window.end})
        return {int(r.project_id): (int(r.rows), int(r.max_id)) for r in rows}


class _MaxId:
    """Passes batches through, remembering the highest id (the exported fingerprint)."""

    def __init__(self) -> None:
        self.value: int | None = None

    def watch(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            top = pc.max(batch.column("id")).as_py()
            if top is not None and (self.value is None or top > self.value):
                self.value = int(top)
            yield batch


@dataclass(frozen=True)
class _Exporter:
    engine: Engine
    database_url: str
    settings: Settings
    request: ExportRequest
    ds: Dataset

    def destinations(self) -> list[Destination]:
        request = self.request
        with self.engine.begin() as conn:
            ensure_default_backup(conn, self.settings)
            found = list_destinations(conn)
        return [
            d
            for d in found
            if d.enabled
            and d.frequency == request.window.frequency
            and request.dataset in d.datasets
            and (request.project_id is None or d.project_id == request.project_id)
            and (request.fmt is None or d.format == request.fmt)
            and (request.destination_id is None or d.id == request.destination_id)
        ]

    def projects_for(
        self, destination: Destination, counts: dict[int, tuple[int, int]]
    ) -> list[int]:
        if destination.project_id is not None:
            # A client always gets a manifest, even for an empty window: its "done" signal.
            return [destination.project_id]
        # The backup copies every project with rows, plus any it holds already (to clear it).
        with self.engine.connect() as conn:
            known: set[int] = set(conn.execute(select(projects.c.id)).scalars())
            previous: set[int] = set(
                conn.execute(
                    select(partitions.c.project_id).where(
                        partitions.c.destination_id == destination.id,
                        partitions.c.dataset == self.ds.name,
                        partitions.c.frequency == self.request.window.frequency,
                        partitions.c.window_start == self.request.window.start,
                    )
                ).scalars()
            )
        return sorted((set(counts) & known) | previous)

    def _result(self, destination: Destination, project_id: int, **kwargs: object) -> UnitResult:
        return UnitResult(
            destination_id=destination.id,
            destination=destination.label,
            location=destination.location,
            project_id=project_id,
            **kwargs,  # type: ignore[arg-type]
        )

    def fail(
        self,
        destination: Destination,
        project_id: int,
        error: StoreError,
        started: float,
        store: Store | None = None,
    ) -> UnitResult:
        pid = PartitionId(destination.id, self.ds.name, project_id, self.request.window)
        layout = PartitionLayout(destination.prefix, self.ds.name, project_id, self.request.window)
        if store is not None:
            discard_staging(store, layout)
        with self.engine.begin() as conn:
            if state.get_state(conn, pid) is None:
                state.mark_running(conn, pid, destination.format, self.request.run_id)
            state.mark_failed(conn, pid, str(error))
        log.error("export of %s to %s failed: %s", layout.directory, destination.location, error)
        return self._result(
            destination,
            project_id,
            status="failed",
            seconds=time.monotonic() - started,
            error=str(error),
            permanent=error.permanent,
        )

    def unchanged(
        self, store: Store, destination: Destination, pid: PartitionId, fingerprint: Fingerprint
    ) -> UnitResult | None:
        """A skip result when the last export still holds exactly the source's rows."""
        with self.engine.connect() as conn:
            last = state.get_state(conn, pid)
        if (
            last is None
            or last.status != "succeeded"
            or last.format != destination.format
            or (last.rows, last.source_max_id) != fingerprint
        ):
            return None
        layout = PartitionLayout(destination.prefix, pid.dataset, pid.project_id, pid.window)
        manifest = read_manifest(store, layout)
        if manifest is None:  # deleted at the destination since: export again
            return None
        return self._result(
            destination,
            pid.project_id,
            status="skipped",
            rows=int(manifest["rows"]),
            bytes=int(manifest["bytes"]),
            keys=tuple(f["key"] for f in manifest.get("files", [])),
            manifest_key=layout.manifest_key,
        )

    def export(
        self, store: Store, destination: Destination, project_id: int, fingerprint: Fingerprint
    ) -> UnitResult:
        started = time.monotonic()
        request, ds, settings = self.request, self.ds, self.settings
        pid = PartitionId(destination.id, ds.name, project_id, request.window)
        layout = PartitionLayout(destination.prefix, ds.name, project_id, request.window)
        failed: UnitResult | None = None
        # One transaction: the lock is transaction-scoped, so it holds through a pooler
        # in transaction mode (a session lock would stay behind on a pooled connection).
        with source.connect(self.database_url) as pg, pg.transaction():
            # One exporter per partition and destination at a time: a backfill that
            # overlaps the schedule waits here, then finds the work done and skips it.
            lock = f"lytics-export:{destination.id}:{ds.name}:{project_id}:{request.window.start}"
            pg.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock,))
            if not request.force:
                skipped = self.unchanged(store, destination, pid, fingerprint)
                if skipped is not None:
                    return skipped
            with self.engine.begin() as conn:
                state.mark_running(conn, pid, destination.format, request.run_id)
            max_id = _MaxId()
            try:
                with (
                    source.stream_batches(
                        pg,
                        ds,
                        project_id,
                        request.window,
                        block_bytes=int(settings.exports_block_mb * MB),
                    ) as batches,
                    tempfile.TemporaryDirectory(prefix="lytics-export-") as spool,
                ):
                    parts = write_parts(
                        max_id.watch(batches),
                        destination.format,
                        ds,
                        Path(spool),
                        roll_bytes=int(settings.exports_file_mb * MB),
                    )
                    published = publish(
                        store,
                        layout,
                        parts,
                        fmt=destination.format,
                        schema=ds.schema,
                        run_id=request.run_id,
                        extra={"source": {"table": ds.table, "max_id": max_id.value}},
                    )
            except StoreError as exc:
                failed = self.fail(destination, project_id, exc, started, store)
            except Exception as exc:
                log.exception("export of %s to %s failed", layout.directory, destination.location)
                error = StoreError(f"{type(exc).__name__}: {exc}", permanent=False)
                failed = self.fail(destination, project_id, error, started, store)
            else:
                # Recorded before the lock is released: an exporter waiting on it must find
                # the partition done, not export it again.
                with self.engine.begin() as conn:
                    state.mark_succeeded(
                        conn,
                        pid,
                        rows=published.rows,
                        size=published.bytes,
                        files=len(published.keys),
                        source_max_id=max_id.value,
                        manifest_key=published.manifest_key,
                        manifest=published.manifest,
                    )
            # A read that failed inside Postgres leaves the transaction aborted: psycopg
            # then ends it with a rollback on the way out, without raising.
        if failed is not None:
            return failed
        log.info(
            "exported %s rows (%s bytes, %s files) to %s/%s",
            published.rows,
            published.bytes,
            len(published.keys),
            destination.location,
            layout.directory,
        )
        return self._result(
            destination,
            project_id,
            status="exported",
            rows=published.rows,
            bytes=published.bytes,
            keys=published.keys,
            manifest_key=published.manifest_key,
            seconds=time.monotonic() - started,
        )

    def run(self) -> ExportReport:
        report = ExportReport(self.request)
        counts = source_counts(self.engine, self.ds, self.request.window)
        for destination in self.destinations():
            project_ids = self.projects_for(destination, counts)
            try:
                store: Store = open_store(destination, self.settings)
            except (InvalidToken, MissingSettingError) as exc:
                why = (
                    "LYTICS_SECRET_KEY is not the key they were stored with"
                    if isinstance(exc, InvalidToken)
                    else str(exc)
                )
                problem = StoreError(
                    f"cannot use the credentials of {destination.label}: {why}", permanent=True
                )
                report.units.extend(
                    self.fail(destination, p, problem, time.monotonic()) for p in project_ids
                )
                continue
            for project_id in project_ids:
                fingerprint = counts.get(project_id, (0, None))
                report.units.append(self.export(store, destination, project_id, fingerprint))
        return report


def export_window(database_url: str, settings: Settings, request: ExportRequest) -> ExportReport:
    """Export `request.dataset` for one window to every matching destination."""
    # A small pool: a window makes a few dozen short queries, each unit its own.
    engine = create_sync_engine(database_url, pool_size=2, max_overflow=2)
    try:
        exporter = _Exporter(engine, database_url, settings, request, get_dataset(request.dataset))
        return exporter.run()
    finally:
        engine.dispose()


@dataclass(frozen=True)
class CheckRow:
    destination: str
    project_id: int
    manifest_rows: int | None
    source_rows: int

    @property
    def ok(self) -> bool:
        return self.manifest_rows == self.source_rows


def check_window(
    database_url: str, settings: Settings, dataset: str, window: Window, destination_ids: set[int]
) -> list[CheckRow]:
    """Each exported partition of the window: its manifest's rows (read back) vs the source now."""
    ds = get_dataset(dataset)
    # A small pool: a window makes a few dozen short queries, each unit its own.
    engine = create_sync_engine(database_url, pool_size=2, max_overflow=2)
    rows: list[CheckRow] = []
    try:
        counts = source_counts(engine, ds, window)
        with engine.connect() as conn:
            destinations = {d.id: d for d in list_destinations(conn) if d.id in destination_ids}
            exported = conn.execute(
                select(partitions.c.destination_id, partitions.c.project_id).where(
                    partitions.c.dataset == dataset,
                    partitions.c.frequency == window.frequency,
                    partitions.c.window_start == window.start,
                    partitions.c.destination_id.in_(destination_ids),
                )
            ).all()
        for row in exported:
            destination_id, project_id = int(row.destination_id), int(row.project_id)
            destination = destinations[destination_id]
            layout = PartitionLayout(destination.prefix, dataset, project_id, window)
            manifest = read_manifest(open_store(destination, settings), layout)
            rows.append(
                CheckRow(
                    destination.label,
                    project_id,
                    int(manifest["rows"]) if manifest else None,
                    counts.get(project_id, (0, 0))[0],
                )
            )
    finally:
        engine.dispose()
    return rows
