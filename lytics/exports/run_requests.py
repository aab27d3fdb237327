"""A request to export a time range again: what each destination gets, and why some get nothing.

Each destination exports at its own cadence, so a request for a closed hour
exports it to the project's hourly destinations even though its daily ones
have no closed day in that range: those are reported as skipped, with the
reason, and the request is refused only when no destination gets anything.
Shared by `POST /v1/exports/run` and `lytics exports backfill`, so both answer
the same way. One Dagster backfill per frequency carries the request: the
assets export each window to every matching destination (narrowed by run tags).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from lytics.dagster_api import DagsterApi
from lytics.exports.backfills import BackfillPlan, closed_windows, plan
from lytics.exports.destinations import Destination, ensure_default_backup, list_destinations
from lytics.exports.windows import FREQUENCIES, Frequency

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from lytics.settings import Settings

RefusalKind = Literal["invalid", "no_destination"]


@dataclass(frozen=True)
class Target:
    """A destination as a request sees it (never its credentials)."""

    name: str
    project_id: int | None
    frequency: Frequency
    format: str
    datasets: tuple[str, ...]
    enabled: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any], project_id: int | None) -> Target:
        """From a row of app.export_destinations (or a destination's public view)."""
        return cls(
            name=str(row["name"]),
            project_id=project_id,
            frequency="hourly" if row["frequency"] == "hourly" else "daily",
            format=str(row["format"]),
            datasets=tuple(row["datasets"]),
            enabled=bool(row["enabled"]),
        )

    @classmethod
    def of(cls, destination: Destination) -> Target:
        return cls.from_row(destination.public(), destination.project_id)


@dataclass(frozen=True)
class RunRequest:
    since: datetime
    until: datetime
    # None: every destination, the backups included (an operator's request).
    project_id: int | None
    fmt: str | None = None
    datasets: frozenset[str] | None = None
    frequency: Frequency | None = None
    # Re-export partitions whose source rows did not change (an explicit request does).
    force: bool = True
    max_partitions: int | None = None


@dataclass(frozen=True)
class Requested:
    destination: str
    project_id: int | None
    frequency: Frequency
    format: str
    datasets: tuple[str, ...]
    partitions: int
    first_partition: str
    last_partition: str


@dataclass(frozen=True)
class Skipped:
    destination: str
    project_id: int | None
    reason: str
    # The request parameter that left it out (None: the destination is disabled).
    field: str | None


@dataclass(frozen=True)
class RunPlan:
    backfills: tuple[BackfillPlan, ...]
    requested: tuple[Requested, ...]
    skipped: tuple[Skipped, ...]


class RunRefusedError(ValueError):
    """Nothing of the request can be exported; `field` names the parameter to change."""

    def __init__(self, message: str, *, kind: RefusalKind, field: str | None) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


def _filtered_out(target: Target, request: RunRequest) -> Skipped | None:
    def skip(reason: str, field: str | None) -> Skipped:
        return Skipped(target.name, target.project_id, reason, field)

    if not target.enabled:
        return skip("the destination is disabled", None)
    if request.fmt is not None and target.format != request.fmt:
        return skip(f"it writes {target.format}, the request asks for {request.fmt}", "format")
    if request.frequency is not None and target.frequency != request.frequency:
        return skip(
            f"it exports {target.frequency}, the request asks for {request.frequency}",
            "frequency",
        )
    if request.datasets is not None and not request.datasets.intersection(target.datasets):
        wanted = ", ".join(sorted(request.datasets))
        return skip(f"it exports {', '.join(target.datasets)}, not {wanted}", "dataset")
    return None


def _why_none(skips: Iterable[Skipped]) -> str:
    return "; ".join(f"{s.destination}: {s.reason}" for s in skips)


def plan_run(
    targets: Iterable[Target], request: RunRequest, *, now: datetime, first: datetime
) -> RunPlan:
    """Per frequency, the closed windows in the request; per destination, what it gets.

    `first` is the first partition of the export assets (LYTICS_EXPORTS_START).
    Raises RunRefusedError when nothing at all would be exported.
    """
    if request.since >= request.until:
        raise RunRefusedError("since must be before until", kind="invalid", field="since")
    skipped: list[Skipped] = []
    matched: list[Target] = []
    for target in targets:
        left_out = _filtered_out(target, request)
        if left_out is None:
            matched.append(target)
        else:
            skipped.append(left_out)
    if not matched:
        why = f" ({_why_none(skipped)})" if skipped else ""
        raise RunRefusedError(
            f"no enabled export destination matches the request{why}",
            kind="no_destination",
            field=None,
        )

    backfills: list[BackfillPlan] = []
    requested: list[Requested] = []
    refused: list[Skipped] = []
    for frequency in FREQUENCIES:
        group = [t for t in matched if t.frequency == frequency]
        if not group:
            continue
        windows = closed_windows(frequency, request.since, request.until, now, first)
        reason, field = "", ""
        if not windows:
            reason, field = (
                f"no closed {frequency} window between since and until (exports start "
                f"{first.date()}; a window is exported once it has ended)",
                "since",
            )
        elif request.max_partitions is not None and len(windows) > request.max_partitions:
            reason, field = (
                f"{len(windows)} {frequency} partitions requested; at most "
                f"{request.max_partitions} per request",
                "until",
            )
        if reason:
            refused += [Skipped(t.name, t.project_id, reason, field) for t in group]
            continue
        datasets = {
            d
            for t in group
            for d in t.datasets
            if request.datasets is None or d in request.datasets
        }
        backfill = plan(
            frequency=frequency,
            datasets=datasets,
            windows=windows,
            project_id=request.project_id,
            fmt=request.fmt,
            force=request.force,
        )
        backfills.append(backfill)
        requested += [
            Requested(
                destination=t.name,
                project_id=t.project_id,
                frequency=frequency,
                format=t.format,
                datasets=tuple(d for d in t.datasets if d in datasets),
                partitions=len(windows),
                first_partition=windows[0].partition_key,
                last_partition=windows[-1].partition_key,
            )
            for t in group
        ]
    if not backfills:
        raise RunRefusedError(
            f"nothing to export: {_why_none(refused + skipped)}",
            kind="invalid",
            field=refused[0].field,
        )
    return RunPlan(tuple(backfills), tuple(requested), tuple(skipped + refused))


async def launch(api: DagsterApi, run: RunPlan, title: str) -> dict[str, Any]:
    """Launch the plan's backfills; the answer both the API and the command give.

    Raises DagsterApiError when Dagster cannot be reached or refuses a launch.
    """
    ids: dict[Frequency, str] = {}
    backfills = []
    for backfill in run.backfills:
        ids[backfill.frequency] = await api.launch_backfill(
            asset_keys=backfill.asset_keys,
            partition_names=backfill.partition_names,
            tags=backfill.tags,
            title=title,
        )
        backfills.append(
            {
                "id": ids[backfill.frequency],
                "frequency": backfill.frequency,
                "assets": list(backfill.asset_keys),
                "partitions": len(backfill.partition_names),
                "first_partition": backfill.partition_names[0],
                "last_partition": backfill.partition_names[-1],
            }
        )
    return {
        "id": backfills[0]["id"],
        "backfills": backfills,
        "destinations": [
            {
                "destination": r.destination,
                "project_id": r.project_id,
                "backfill": ids[r.frequency],
                "frequency": r.frequency,
                "format": r.format,
                "datasets": list(r.datasets),
                "partitions": r.partitions,
                "first_partition": r.first_partition,
                "last_partition": r.last_partition,
            }
            for r in run.requested
        ],
        "skipped": [
            {
                "destination": s.destination,
                "project_id": s.project_id,
                "reason": s.reason,
                "field": s.field,
            }
            for s in run.skipped
        ],
    }


def load_targets(conn: Connection, settings: Settings, project_id: int | None) -> list[Target]:
    """A project's destinations, or (None) every destination with the backups.

    Every destination includes the default backup, created here as the first
    export would create it: otherwise a fresh deployment's request would find
    nothing to export although its run would export to the backup.
    """
    if project_id is None:
        ensure_default_backup(conn, settings)
    return [Target.of(d) for d in list_destinations(conn, project_id=project_id)]
