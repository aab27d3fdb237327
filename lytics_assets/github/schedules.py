"""Daily GitHub work: a full incremental sync, then the day's closing snapshot."""

import dagster as dg

from lytics_assets.github.jobs import snapshot_github, sync_github


@dg.schedule(
    name="github_daily",
    job=sync_github,
    cron_schedule="15 23 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Every day, sync every connected GitHub token (traffic keeps only 14 days, so daily "
        "is the slowest safe pace). Webhooks refresh single repositories in between."
    ),
)
def github_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(run_key=f"github-daily:{day}")


@dg.schedule(
    name="github_daily_snapshot",
    job=snapshot_github,
    cron_schedule="45 23 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Late each day (after the sync), record the day's repository counts.",
)
def github_daily_snapshot(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(run_key=f"github-snapshot:{day}", partition_key=day)
