"""`lytics retention`: how long each project's raw events are kept."""

from __future__ import annotations

import click


@click.group()
def retention() -> None:
    """Set and inspect raw-event retention (applied daily by the retention_daily schedule)."""


@retention.command("set")
@click.argument("slug")
@click.argument("days", required=False, type=click.IntRange(min=1))
@click.option("--keep-forever", is_flag=True, help="Never remove this project's raw events.")
@click.option("--default", "inherit", is_flag=True, help="Follow LYTICS_RAW_RETENTION_DAYS again.")
def set_(slug: str, days: int | None, keep_forever: bool, inherit: bool) -> None:
    """Keep project SLUG's raw events for DAYS whole days (plus today)."""
    from lytics.cli.database import transaction
    from lytics.retention import set_project_window
    from lytics.settings import get_settings

    if sum((days is not None, keep_forever, inherit)) != 1:
        raise click.UsageError("give exactly one of DAYS, --keep-forever or --default")
    with transaction(get_settings()) as conn:
        set_project_window(conn, slug, days, inherit=inherit)
    what = f"{days} days" if days else "forever" if keep_forever else "the deployment's default"
    click.echo(f"{slug}: raw events kept {what}; applied by the next retention run")


@retention.command("show")
def show() -> None:
    """Each project's window, horizon and what the last run removed."""
    from lytics.cli.database import transaction
    from lytics.retention import status
    from lytics.settings import get_settings

    settings = get_settings()
    with transaction(settings) as conn:
        rows = status(conn, settings.raw_retention_days)
    for row in rows:
        window = f"{row.retention_days} days" if row.retention_days else "forever"
        horizon = row.retained_from.date().isoformat() if row.retained_from else "-"
        last = (
            f"last run {row.last_run_at:%Y-%m-%d %H:%M} removed {row.last_removed}"
            if row.last_run_at
            else "never run"
        )
        click.echo(f"{row.project_slug}\tkept {window}\tfrom {horizon}\t{last}")
