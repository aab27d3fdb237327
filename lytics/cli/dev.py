"""`lytics dev`: the whole platform on one machine, stopped cleanly by Ctrl-C or SIGTERM."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--api-port", type=int, help="Ingest API port (default LYTICS_API_PORT or 8000).")
@click.option(
    "--dagster-port", type=int, help="Dagster UI port (default LYTICS_DAGSTER_PORT or 3000)."
)
@click.option("--host", help="Interface for both servers (default 127.0.0.1).")
@click.option("--no-api", is_flag=True, help="Do not start the ingest API.")
@click.option("--no-dagster", is_flag=True, help="Do not start the Dagster webserver and daemon.")
def dev(
    api_port: int | None, dagster_port: int | None, host: str | None, no_api: bool, no_dagster: bool
) -> None:
    """Start Postgres (embedded unless DATABASE_URL), migrate, then the ingest API and Dagster.

    Ctrl-C or SIGTERM stops everything, Postgres included; the data stays in
    the data folder for the next start.
    """
    from lytics.devserver.platform import DevOptions, DevPlatform
    from lytics.settings import get_settings

    settings = get_settings()
    options = DevOptions(
        api_host=host or settings.api_host,
        api_port=settings.api_port if api_port is None else api_port,
        dagster_host=host or settings.dagster_host,
        dagster_port=settings.dagster_port if dagster_port is None else dagster_port,
        run_api=not no_api,
        run_dagster=not no_dagster,
    )
    sys.exit(DevPlatform(settings, options).run())
