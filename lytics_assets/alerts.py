"""Every failed run raises an alert (log always; webhook and email when configured)."""

import dagster as dg

from lytics.alerts import Alert, AlertTargets, send_alert
from lytics.settings import get_settings


def alert_targets() -> AlertTargets:
    """From Settings (README, Configuration): the process-wide `get_settings()`."""
    return AlertTargets.from_settings(get_settings())


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=True,
    description="Alerts on every failed run: structured log, plus webhook/email when configured.",
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    alert = Alert(
        title=f"Dagster run failed: {run.job_name}",
        detail=context.failure_event.message or "the run failed",
        context={
            "run_id": run.run_id,
            "job": run.job_name,
            "partition": run.tags.get("dagster/partition")
            or (
                f"{run.tags.get('dagster/asset_partition_range_start')}.."
                f"{run.tags.get('dagster/asset_partition_range_end')}"
                if run.tags.get("dagster/asset_partition_range_start")
                else ""
            ),
        },
    )
    outcomes = send_alert(alert, alert_targets())
    context.log.info(f"alert for run {run.run_id}: {outcomes}")
