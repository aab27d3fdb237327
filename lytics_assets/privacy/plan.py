"""The runs a deletion request needs after its erasure: mart days and export windows."""

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

import dagster as dg

from lytics.exports.backfills import FORCE_TAG, PROJECT_TAG
from lytics.exports.windows import STEP, Frequency, Window
from lytics.privacy.requests import DeletionRequest
from lytics_assets.exports.assets import asset_key
from lytics_assets.metrics.partitions import daily
from lytics_assets.metrics.refresh import REFRESH_TAG
from lytics_assets.metrics.requests import range_request
from lytics_assets.privacy.jobs import REQUEST_TAG


def contiguous(starts: Iterable[datetime], step: timedelta) -> Iterator[list[datetime]]:
    """Sorted instants grouped into runs with no gap (each one `step` after the last)."""
    run: list[datetime] = []
    for start in sorted(set(starts)):
        if run and start - run[-1] != step:
            yield run
            run = []
        run.append(start)
    if run:
        yield run


def metrics_requests(request: DeletionRequest) -> list[dg.RunRequest]:
    """A window rebuild of each stretch of consecutive affected days."""
    keys = set(daily.get_partition_keys())
    days = [
        datetime.combine(day, datetime.min.time())
        for day in request.event_days
        if day.isoformat() in keys
    ]
    return [
        range_request(
            [d.date().isoformat() for d in stretch],
            f"privacy-{request.id}-metrics-{stretch[0].date().isoformat()}",
            "refresh_metrics",
            tags={REFRESH_TAG: "window", REQUEST_TAG: str(request.id)},
        )
        for stretch in contiguous(days, timedelta(days=1))
    ]


def export_requests(
    request: DeletionRequest, partitions: dict[Frequency, dg.TimeWindowPartitionsDefinition]
) -> list[dg.RunRequest]:
    """A forced re-export, for this project, of each stretch of affected event windows."""
    found = []
    for frequency, partitions_def in partitions.items():
        keys = set(partitions_def.get_partition_keys())
        windows = [
            Window.from_partition_key(frequency, key)
            for key in request.export_windows.get(frequency, [])
            if key in keys
        ]
        for stretch in contiguous((w.start for w in windows), STEP[frequency]):
            window_keys = [Window(frequency, start).partition_key for start in stretch]
            found.append(
                range_request(
                    window_keys,
                    f"privacy-{request.id}-exports-{frequency}-{window_keys[0]}",
                    f"exports_{frequency}_job",
                    tags={
                        FORCE_TAG: "true",
                        PROJECT_TAG: str(request.project_id),
                        REQUEST_TAG: str(request.id),
                    },
                    asset_selection=[asset_key("events", frequency)],
                )
            )
    return found
