"""Weekly digest emails: the definitions this domain adds to the code location.

Thin glue: the partition (a week), the schedule, the `email` pool, the run's
metadata and what Dagster knows about attempts (is the run that claimed these rows
still in progress? did this run fail?) live here; choosing recipients, rendering
and the exactly-once sending live in `lytics.digests`.
"""

from datetime import date
from typing import Any, Literal

import dagster as dg
from pydantic import Field, SecretStr
from sqlalchemy import Engine, text

from lytics.digests import launch, runs
from lytics.digests.attempts import Attempt
from lytics.digests.config import missing_for_sending
from lytics.digests.sender import RunReport
from lytics.digests.service import run_digest
from lytics.digests.weeks import last_complete_week
from lytics.settings import Settings, get_settings
from lytics_assets.resources import WarehouseResource

JOB_NAME = launch.JOB_NAME
SCHEDULE_NAME = "weekly_digest_schedule"
ASSET_KEY = dg.AssetKey(["digests", "weekly_digest"])
POOL = "email"
# The marts a digest reads (lineage: each week reads whole weeks of these).
MARTS = (
    "daily_site_metrics",
    "daily_visitor_recency",
    "daily_kpi_metrics",
    "daily_top_referrers",
    "daily_top_utm_sources",
)
# A scheduled run that meets the cooldown waits it out rather than skipping the week.
SCHEDULE_COOLDOWN_WAIT_S = 900.0
METADATA_ROWS = 500
FINISHED = frozenset(
    {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
)


class DigestRunConfig(dg.Config):
    """What a run covers; the launchpad shows these for a run launched by hand."""

    scope: Literal["all", "email"] = Field(
        "all", description='"all": every recipient; "email": only `email`'
    )
    email: str | None = Field(None, description='The one address when scope is "email"')
    project: str | None = Field(None, description="A project slug; empty: every project")
    digest_run_id: int | None = Field(
        None, description="Set by the API, which already claimed the cooldown for this run"
    )
    wait_for_cooldown_s: float = Field(
        SCHEDULE_COOLDOWN_WAIT_S,
        description="How long to wait when another digest run started within the cooldown",
    )


class DigestSettings(dg.ConfigurableResource["DigestSettings"]):
    """Lytics settings for sending (environment and .env), with optional overrides for tests."""

    resend_api_url: str | None = None
    resend_api_key: str | None = None
    resend_rate_per_second: float | None = None
    resend_backoff_seconds: float | None = None
    digest_cooldown_seconds: int | None = None
    public_url: str | None = None

    def settings(self) -> Settings:
        overrides: dict[str, Any] = {
            name: value for name, value in self.model_dump().items() if value is not None
        }
        if self.resend_api_key is not None:
            overrides["resend_api_key"] = SecretStr(self.resend_api_key)
        return get_settings().model_copy(update=overrides)


def _recipient_table(report: RunReport) -> str:
    lines = [
        "| week | project | recipient | status | Resend id | note |",
        "|---|---|---|---|---|---|",
    ]
    for row in report.recipients[:METADATA_ROWS]:
        note = str(row.get("last_error") or "").replace("|", "/")[:120]
        lines.append(
            f"| {row['week']} | {row['project']} | {row['recipient']} | {row['status']} "
            f"| {row.get('provider_message_id') or ''} | {note} |"
        )
    if len(report.recipients) > METADATA_ROWS:
        lines.append(
            f"\n… and {len(report.recipients) - METADATA_ROWS} more (app.digest_deliveries)"
        )
    return "\n".join(lines)


def _metadata(report: RunReport) -> dict[str, Any]:
    return {
        "digest_run_id": report.run_id,
        "sent": report.sent,
        "skipped": report.skipped,
        "errors": report.errors,
        "by_status": dg.MetadataValue.json(report.by_status),
        "recipients": dg.MetadataValue.md(_recipient_table(report)),
        "elapsed_s": round(report.elapsed_s, 2),
        "stopped": report.stopped or "",
    }


def _project_id(warehouse: WarehouseResource, slug: str | None) -> int | None:
    if slug is None:
        return None
    with warehouse.connect() as conn:
        found = conn.execute(
            text("SELECT id FROM app.projects WHERE slug = :s"), {"s": slug}
        ).scalar()
    if found is None:
        raise dg.Failure(f"no project {slug!r}")
    return int(found)


def _attempt(context: dg.AssetExecutionContext) -> Attempt:
    """This run is the attempt; another is over once Dagster has finished it (or lost it)."""
    instance = context.instance

    def is_over(attempt_id: str) -> bool:
        run = instance.get_run_by_id(attempt_id)
        return run is None or run.status in FINISHED

    return Attempt(context.run.run_id, is_over)


def _digest_run_id(
    context: dg.AssetExecutionContext, config: DigestRunConfig, engine: Engine
) -> int | None:
    """The digest run this attempt continues: the one the API claimed (config), or, for a
    retry of a scheduled run, the one its failed parent run was sending."""
    if config.digest_run_id is not None:
        return config.digest_run_id
    parent = context.run.parent_run_id
    if parent is None:
        return None
    with engine.begin() as conn:
        return runs.retried(conn, parent)


def build_asset(weeks: dg.WeeklyPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=ASSET_KEY,
        group_name="digests",
        partitions_def=weeks,
        # A backfill of several weeks is one run: one cooldown slot, one pass over Resend.
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=POOL,
        kinds={"resend", "email"},
        deps=[
            dg.AssetDep(
                dg.AssetKey(["analytics", name]), partition_mapping=dg.AllPartitionMapping()
            )
            for name in MARTS
        ],
        description=(
            "The weekly KPI email to every project member with digests on, sent exactly once "
            "per recipient and week through Resend (outbox: app.digest_deliveries)."
        ),
    )
    def weekly_digest(
        context: dg.AssetExecutionContext,
        config: DigestRunConfig,
        warehouse: WarehouseResource,
        digest_settings: DigestSettings,
    ) -> dg.MaterializeResult[Any]:
        settings = digest_settings.settings()
        week_starts = sorted(date.fromisoformat(key) for key in context.partition_keys)
        if config.scope == "email" and not config.email:
            raise dg.Failure('scope "email" needs `email`')
        request = runs.RunRequest(
            period_start=week_starts[0],
            period_end=week_starts[-1] if len(week_starts) > 1 else None,
            scope=config.scope,
            scope_email=config.email if config.scope == "email" else None,
            project_id=_project_id(warehouse, config.project),
            dagster_run_id=context.run.run_id,
        )
        # Least privilege: the digest reads marts and writes only its own bookkeeping.
        try:
            with warehouse.as_pipeline() as engine:
                report = run_digest(
                    engine,
                    settings,
                    request,
                    week_starts,
                    run_id=_digest_run_id(context, config, engine),
                    attempt=_attempt(context),
                    wait_s=config.wait_for_cooldown_s,
                    progress=context.log.info,
                )
        except runs.CooldownActiveError as exc:
            raise dg.Failure(str(exc)) from exc
        metadata = _metadata(report)
        if report.stopped or report.errors:
            # The rows left pending or claimed are picked up by the next run.
            raise dg.Failure(
                f"digest run {report.run_id} stopped: {report.stopped or 'see recipients'}",
                metadata=metadata,
            )
        return dg.MaterializeResult(metadata=metadata)

    return weekly_digest


def build_schedule(settings: Settings) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=SCHEDULE_NAME,
        job_name=JOB_NAME,
        cron_schedule=f"0 {settings.digest_send_hour} * * 1",
        execution_timezone=settings.digest_timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Monday morning: last week's digest to every recipient.",
    )
    def weekly_digest_schedule(
        context: dg.ScheduleEvaluationContext, digest_settings: DigestSettings
    ) -> dg.RunRequest | dg.SkipReason:
        # The settings the run would get: a run that can only fail is not requested.
        missing = missing_for_sending(digest_settings.settings())
        if missing is not None:
            return dg.SkipReason(f"no digests are sent: {missing}")
        week = last_complete_week(context.scheduled_execution_time.date())
        # One request per week, ever: the run key is the week, not the clock.
        return dg.RunRequest(
            run_key=f"weekly-digest:{week.isoformat()}", partition_key=week.isoformat()
        )

    return weekly_digest_schedule


def _is_digest_run(run: dg.DagsterRun) -> bool:
    return (
        run.job_name == JOB_NAME
        or launch.DIGEST_RUN_TAG in run.tags
        or ASSET_KEY in (run.asset_selection or ())
    )


def _fail_digest_run(run: dg.DagsterRun, warehouse: WarehouseResource, reason: str) -> int | None:
    digest_run_tag = run.tags.get(launch.DIGEST_RUN_TAG)
    with warehouse.as_pipeline() as engine, engine.begin() as conn:
        return runs.fail_dagster_run(
            conn, run.run_id, int(digest_run_tag) if digest_run_tag else None, reason
        )


@dg.run_failure_sensor(
    name="digest_run_failed",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A failed digest run (a dead process, a failed launch) is failed in "
    "app.digest_runs too, and frees the cooldown for its retry.",
)
def digest_run_failed(context: dg.RunFailureSensorContext, warehouse: WarehouseResource) -> None:
    run = context.dagster_run
    if not _is_digest_run(run):
        return
    reason = f"Dagster run {run.run_id} failed: {context.failure_event.message or 'no reason'}"
    changed = _fail_digest_run(run, warehouse, reason)
    context.log.info(f"digest run for {run.run_id}: {'failed' if changed else 'unchanged'}")


@dg.run_status_sensor(
    name="digest_run_canceled",
    run_status=dg.DagsterRunStatus.CANCELED,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A canceled digest run is failed in app.digest_runs and frees the cooldown.",
)
def digest_run_canceled(context: dg.RunStatusSensorContext, warehouse: WarehouseResource) -> None:
    run = context.dagster_run
    if _is_digest_run(run):
        _fail_digest_run(run, warehouse, f"Dagster run {run.run_id} was canceled")


def build() -> dg.Definitions:
    settings = get_settings()
    weeks = dg.WeeklyPartitionsDefinition(
        start_date=settings.digest_start_date.isoformat(),
        day_offset=1,  # weeks start on Monday
        timezone=settings.digest_timezone,
    )
    asset = build_asset(weeks)
    job = dg.define_asset_job(
        JOB_NAME,
        selection=[ASSET_KEY],
        tags={"lytics/domain": "digests"},
        # One step: in the run's own process, so a dead process is a failed run, which
        # Dagster's run retries (dagster.yaml) restart; a step subprocess dying would be
        # a step failure, which they deliberately do not retry.
        executor_def=dg.in_process_executor,
    )
    return dg.Definitions(
        assets=[asset],
        jobs=[job],
        schedules=[build_schedule(settings)],
        sensors=[digest_run_failed, digest_run_canceled],
        resources={"digest_settings": DigestSettings()},
    )
