"""The outcome of the last attempt per (destination, dataset, project, window).

Written by the exporter around each partition; read by re-runs (to retry only
what failed or changed) and by the status API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert

from lytics.exports.windows import Window
from lytics.warehouse.exports_tables import partitions

ERROR_CHARS = 2000


@dataclass(frozen=True)
class PartitionId:
    destination_id: int
    dataset: str
    project_id: int
    window: Window

    def where(self) -> ColumnElement[bool]:
        return and_(
            partitions.c.destination_id == self.destination_id,
            partitions.c.dataset == self.dataset,
            partitions.c.project_id == self.project_id,
            partitions.c.frequency == self.window.frequency,
            partitions.c.window_start == self.window.start,
        )


@dataclass(frozen=True)
class PartitionState:
    id: int
    status: str
    format: str
    rows: int | None
    source_max_id: int | None
    manifest_key: str | None
    attempts: int
    finished_at: datetime | None


def get_state(conn: Connection, pid: PartitionId) -> PartitionState | None:
    row = conn.execute(
        select(
            partitions.c.id,
            partitions.c.status,
            partitions.c.format,
            partitions.c.rows,
            partitions.c.source_max_id,
            partitions.c.manifest_key,
            partitions.c.attempts,
            partitions.c.finished_at,
        ).where(pid.where())
    ).one_or_none()
    return None if row is None else PartitionState(**row._mapping)


def mark_running(conn: Connection, pid: PartitionId, fmt: str, run_id: str) -> None:
    statement = insert(partitions).values(
        destination_id=pid.destination_id,
        dataset=pid.dataset,
        project_id=pid.project_id,
        frequency=pid.window.frequency,
        window_start=pid.window.start,
        window_end=pid.window.end,
        status="running",
        format=fmt,
        run_id=run_id,
        attempts=1,
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[
                partitions.c.destination_id,
                partitions.c.dataset,
                partitions.c.project_id,
                partitions.c.frequency,
                partitions.c.window_start,
            ],
            set_={
                "status": "running",
                "format": fmt,
                "run_id": run_id,
                "error": None,
                "attempts": partitions.c.attempts + 1,
                "started_at": func.now(),
                "finished_at": None,
            },
        )
    )


def mark_succeeded(
    conn: Connection,
    pid: PartitionId,
    *,
    rows: int,
    size: int,
    files: int,
    source_max_id: int | None,
    manifest_key: str,
    manifest: dict[str, Any],
) -> None:
    conn.execute(
        update(partitions)
        .where(pid.where())
        .values(
            status="succeeded",
            rows=rows,
            bytes=size,
            files=files,
            source_max_id=source_max_id,
            manifest_key=manifest_key,
            manifest=manifest,
            error=None,
            finished_at=func.now(),
        )
    )


def mark_failed(conn: Connection, pid: PartitionId, error: str) -> None:
    # A failed partition has no manifest at the destination, and none is claimed here.
    conn.execute(
        update(partitions)
        .where(pid.where())
        .values(
            status="failed",
            error=error[:ERROR_CHARS],
            rows=None,
            bytes=None,
            files=None,
            source_max_id=None,
            manifest_key=None,
            manifest=None,
            finished_at=func.now(),
        )
    )
