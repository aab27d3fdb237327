"""GitHub assets: one incremental sync (a subsettable multi-asset) and daily snapshots."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from sqlalchemy import Engine, pool

from lytics.crypto import InvalidToken
from lytics.github.client import GitHubAuthError
from lytics.github.sources import list_sources
from lytics.github.sync import STREAMS, Sync, SyncReport, snapshot
from lytics.warehouse.engine import create_sync_engine
from lytics_assets.github.resources import GitHubResource
from lytics_assets.metrics.partitions import daily
from lytics_assets.resources import WarehouseResource

GROUP = "github"
POOL = "github"
OWNERS = ["team:data"]
TABLES = {"accounts": "accounts"} | {s: s for s in STREAMS}

_DESCRIPTIONS = {
    "accounts": "The GitHub account behind each connected token (GET /user).",
    "repositories": (
        "Followed repositories (explicit `owner/name` or every repository of `owner/*`) with "
        "their latest counts and visibility. Private ones are stored but `exposed` only when "
        "the project opted in; the read API and digests show exposed rows only."
    ),
    "stargazers": "Who starred each repository and when (`starred_at`), oldest first.",
    "issues": "Issues (not pull requests), read incrementally with `since=` on updated time.",
    "pull_requests": "Pull requests with state, merged flag and times, newest updated first.",
    "releases": "Releases (tag, draft, prerelease, published time), newest first.",
    "commits": "Commits on each repository's default branch, incrementally with `since=`.",
    "traffic": (
        "Daily views and clones (GitHub keeps 14 days, so this is pulled daily). Needs push "
        "access: a 403 is recorded in the sync's metadata and skipped."
    ),
}
GITHUB_KEYS = [dg.AssetKey([GROUP, stream]) for stream in STREAMS]
SNAPSHOTS_KEY = dg.AssetKey([GROUP, "repository_snapshots"])


def _spec(stream: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=dg.AssetKey([GROUP, stream]),
        description=_DESCRIPTIONS[stream],
        group_name=GROUP,
        kinds={"github", "postgres"},
        owners=OWNERS,
        metadata={"dagster/table_name": f"github.{TABLES[stream]}"},
        # Streams hang off the repositories they belong to.
        deps=[dg.AssetKey([GROUP, "repositories"])] if stream not in STREAMS[:2] else [],
        skippable=True,
    )


class GitHubSyncConfig(dg.Config):
    """Narrow a run (the webhook sensor does): some projects, some repositories."""

    projects: list[str] | None = None
    repositories: list[str] | None = None


def _engine(warehouse: WarehouseResource) -> Engine:
    return create_sync_engine(warehouse.database_url, poolclass=pool.NullPool)


def _metadata(stream: str, reports: list[SyncReport]) -> dict[str, Any]:
    results = [r.streams[stream] for r in reports]
    stopped = [r for r in reports if r.stopped]
    resets = [r.reset_at for r in stopped if r.reset_at]
    return {
        "rows_changed": dg.MetadataValue.int(sum(r.rows_changed for r in results)),
        "pages": dg.MetadataValue.int(sum(r.pages for r in results)),
        "pages_not_modified": dg.MetadataValue.int(sum(r.not_modified for r in results)),
        "complete": dg.MetadataValue.bool(not stopped),
        "stopped": dg.MetadataValue.text(
            ", ".join(f"{r.account}: {r.stopped}" for r in stopped) or "no"
        ),
        "rate_limit_reset_at": dg.MetadataValue.text(max(resets).isoformat() if resets else ""),
        "sources": dg.MetadataValue.json(
            [
                {
                    "project_id": r.project_id,
                    "account": r.account,
                    **r.stats.as_metadata(),
                    "repositories": r.repositories,
                    "not_found": r.not_found,
                    "forbidden": r.forbidden,
                    "stopped": r.stopped,
                    "detail": r.detail,
                }
                for r in reports
            ]
        ),
    }


@dg.multi_asset(
    name="github_sync",
    specs=[_spec(stream) for stream in STREAMS],
    can_subset=True,
    pool=POOL,
    description=(
        "Incremental, rate-limit-aware sync of every connected GitHub token: cursors per "
        "(repository, stream), ETags, a reserve kept on the hourly limit, a clean stop "
        "with cursors saved on a primary limit. Select a subset to sync only those streams."
    ),
)
def github_sync(
    context: dg.AssetExecutionContext,
    config: GitHubSyncConfig,
    github: GitHubResource,
    warehouse: WarehouseResource,
) -> Iterator[dg.MaterializeResult[None]]:
    selected = [key.path[-1] for key in GITHUB_KEYS if key in context.selected_asset_keys]
    engine = _engine(warehouse)
    reports: list[SyncReport] = []
    auth_failures: list[str] = []
    try:
        with engine.connect() as conn:
            sources = [
                s
                for s in list_sources(conn)
                if not config.projects or s.project_slug in config.projects
            ]
        for source in sources:
            try:
                client = github.client(source, engine.begin)
            except (InvalidToken, ValueError) as exc:
                reason = "cannot be decrypted: is LYTICS_SECRET_KEY the key it was stored with?"
                message = reason if isinstance(exc, InvalidToken) else str(exc)
                auth_failures.append(f"{source.project_slug}/{source.account_ref}: {message}")
                continue
            sync = Sync(
                engine.begin,
                source,
                client,
                streams=selected,
                only_repositories=config.repositories or None,
                reserve=github.reserve_requests,
                lookback=github.lookback,
            )
            try:
                report = sync.run()
            except GitHubAuthError as exc:
                context.log.error("%s/%s: %s", source.project_slug, source.account_ref, exc)
                auth_failures.append(f"{source.project_slug}/{source.account_ref}: {exc}")
                continue
            finally:
                client.close()
            reports.append(report)
            context.log.info(
                "%s/%s: %s", source.project_slug, source.account_ref, report.stats.as_metadata()
            )
    finally:
        engine.dispose()
    stopped = [r for r in reports if r.stopped]
    if stopped:
        resets = [r.reset_at for r in stopped if r.reset_at]
        # On the run itself too, where the data team sees it in the runs list.
        context.instance.add_run_tags(
            context.run.run_id,
            {
                "lytics/github_stopped": ",".join(sorted({str(r.stopped) for r in stopped})),
                "lytics/github_reset_at": max(resets).isoformat() if resets else "",
            },
        )
    for stream in selected:
        yield dg.MaterializeResult(
            asset_key=dg.AssetKey([GROUP, stream]), metadata=_metadata(stream, reports)
        )
    if auth_failures:
        raise dg.Failure(
            description="GitHub token unusable: " + "; ".join(auth_failures),
            allow_retries=False,
        )


@dg.asset(
    key=SNAPSHOTS_KEY,
    deps=[dg.AssetKey([GROUP, "repositories"])],
    partitions_def=daily,
    # No GitHub requests here, but sharing the sync's pool makes a snapshot launched
    # while a sync runs wait for it, and so record the counts that sync brings.
    pool=POOL,
    group_name=GROUP,
    kinds={"postgres"},
    owners=OWNERS,
    metadata={"dagster/table_name": "github.repository_snapshots"},
    description=(
        "One row per repository and UTC day: stars, forks, watchers, open issues, size and "
        "default branch, as last observed that day. GitHub keeps no history of these counts, "
        "so these snapshots are the history; a past day cannot be observed after the fact."
    ),
)
def repository_snapshots(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult[None]:
    day = context.partition_time_window.start.date()
    now = datetime.now(UTC)
    if day != now.date():
        # Copying today's counts into another day would invent history.
        context.log.warning("snapshot of %s requested on %s: kept as it is", day, now.date())
        return dg.MaterializeResult(
            metadata={
                "rows_changed": dg.MetadataValue.int(0),
                "observed": dg.MetadataValue.bool(False),
                "note": dg.MetadataValue.text(
                    "only today's counts can be observed; existing rows for this day are kept"
                ),
            }
        )
    engine = _engine(warehouse)
    try:
        changed = snapshot(engine.begin, None, day, now)
    finally:
        engine.dispose()
    return dg.MaterializeResult(
        metadata={
            "rows_changed": dg.MetadataValue.int(changed),
            "observed": dg.MetadataValue.bool(True),
            "observed_at": dg.MetadataValue.text(now.isoformat()),
        }
    )
