"""`lytics metrics`: rebuild the metrics for a range of days, as one Dagster backfill."""

from __future__ import annotations

import sys
from datetime import date, datetime
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from lytics.dagster_api import AssetNode

# The dbt models `refresh_metrics` builds: staging and the marts, keys ["analytics", ...].
GROUPS = ("staging", "metrics")
# Asset backfill runs do not carry the job's tags; these say where they come from.
DOMAIN_TAG = "lytics/domain"
REQUESTED_BY_TAG = "lytics/requested_by"


@click.group()
def metrics() -> None:
    """The daily metrics Dagster builds with dbt (job `refresh_metrics`)."""


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


DAY = click.DateTime(formats=["%Y-%m-%d"])


@metrics.command("backfill")
@click.option(
    "--from", "first", type=DAY, required=True, metavar="YYYY-MM-DD", help="First day (UTC)."
)
@click.option(
    "--to", "last", type=DAY, required=True, metavar="YYYY-MM-DD", help="Last day (inclusive)."
)
def backfill(first: datetime, last: datetime) -> None:
    """Rebuild the metrics of every day from --from to --to as ONE Dagster run.

    Launches an asset backfill of the staging and metrics dbt models over the
    daily partitions; their single-run backfill policy makes it one run (one
    dbt invocation) for the whole range. Follow it at the printed URL.
    """
    import asyncio

    from lytics.dagster_api import DagsterApi, DagsterApiError
    from lytics.settings import get_settings

    start, end = first.date(), last.date()
    if start > end:
        _fail(f"--from {start} is after --to {end}")
    api = DagsterApi(get_settings().graphql_url, timeout_s=30)
    try:
        nodes = asyncio.run(api.group_assets(GROUPS))
        keys = _selection(nodes, start, end)
        backfill_id = asyncio.run(
            api.launch_range_backfill(
                asset_keys=keys,
                start=start.isoformat(),
                end=end.isoformat(),
                tags={DOMAIN_TAG: "metrics", REQUESTED_BY_TAG: "cli"},
                title=f"metrics {start} to {end}",
            )
        )
    except DagsterApiError as exc:
        _fail(str(exc))
    days = (end - start).days + 1
    click.echo(
        f"backfill {backfill_id}: {days} daily partition{'s' if days != 1 else ''} "
        f"({start} to {end}) of {len(keys)} assets, {_runs(nodes)}"
    )
    click.echo(api.backfill_url(backfill_id))


def _selection(nodes: list[AssetNode], start: date, end: date) -> list[str]:
    """The keys to backfill, once the range is known to be within every asset's partitions."""
    built = [n for n in nodes if n.materializable]
    if not built:
        _fail(
            f"Dagster defines no assets in groups {', '.join(GROUPS)}: "
            "is this the Lytics code location?"
        )
    unpartitioned = sorted(n.key for n in built if n.first_partition is None)
    if unpartitioned:
        _fail(f"not daily-partitioned, cannot be backfilled by day: {', '.join(unpartitioned)}")
    # The location's partitions (LYTICS_PARTITIONS_START there, today as the last day).
    first = max(date.fromisoformat(str(n.first_partition)) for n in built)
    last = min(date.fromisoformat(str(n.last_partition)) for n in built)
    if start < first or end > last:
        _fail(f"the metrics partitions run from {first} to {last}; {start} to {end} is outside")
    return sorted(n.key for n in built)


def _runs(nodes: list[AssetNode]) -> str:
    policies = {n.backfill_policy for n in nodes if n.materializable}
    if policies == {"SINGLE_RUN"}:
        return "in one run"
    # Someone changed the assets' policy: say so rather than promise one run.
    return f"in runs planned by backfill policy {', '.join(sorted(map(str, policies)))}"
