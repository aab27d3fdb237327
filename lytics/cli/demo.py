"""`lytics demo`: deterministic traffic through the real ingest API, and its ground truth."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from lytics.crypto import Cipher
    from lytics.demo.model import Parameters
    from lytics.demo.sender import Credentials, PlannedRequest, SendReport
    from lytics.projects import Project
    from lytics.settings import Settings

KEY_NAME = "lytics demo"
WEBHOOK_SOURCE = "resend"


def _project(conn: Connection, slug: str, name: str) -> Project:
    from lytics.projects import (
        ProjectExistsError,
        ProjectNotFoundError,
        create_project,
        get_project,
    )

    try:
        return get_project(conn, slug)
    except ProjectNotFoundError:
        pass
    try:
        return create_project(conn, slug, name)
    except ProjectExistsError:  # another run created it meanwhile
        return get_project(conn, slug)


def _set_conversion_events(conn: Connection, project_id: int, events: tuple[str, ...]) -> None:
    from sqlalchemy import bindparam, update
    from sqlalchemy.dialects.postgresql import JSONB

    from lytics.warehouse.tables import projects

    # Merged into the settings, so whatever else an operator configured stays.
    patch = bindparam("patch", {"conversion_events": list(events)}, type_=JSONB)
    conn.execute(
        update(projects)
        .where(projects.c.id == project_id)
        .values(settings=projects.c.settings.op("||", return_type=JSONB)(patch))
    )


def _fresh_keys(conn: Connection, project_id: int) -> tuple[str, str]:
    """New write and secret keys; the previous demo run's keys are revoked so they never pile up."""
    from lytics import api_keys

    for key in api_keys.list_keys(conn, project_id):
        if key.name == KEY_NAME and key.active():
            api_keys.revoke_key(conn, key.id)
    write = api_keys.create_key(conn, project_id, "write", KEY_NAME)
    secret = api_keys.create_key(conn, project_id, "secret", KEY_NAME)
    return write.plaintext, secret.plaintext


def _webhook_secret(conn: Connection, cipher: Cipher, project_id: int) -> str:
    """The project's Resend secret, created once and then reused.

    Reused rather than replaced: the API caches secrets for a few seconds, so a
    replaced secret would be refused right after a previous run.
    """
    from lytics import webhook_secrets
    from lytics.crypto import InvalidToken

    try:
        current = webhook_secrets.load_secrets(conn, cipher, project_id, WEBHOOK_SOURCE)
    except (InvalidToken, ValueError):
        current = []  # stored under another LYTICS_SECRET_KEY: unusable, so replaced
    if current:
        return current[0]
    secret = webhook_secrets.generate_secret(WEBHOOK_SOURCE)
    webhook_secrets.set_secrets(conn, cipher, project_id, WEBHOOK_SOURCE, [secret])
    return secret


def _provision(settings: Settings, params: Parameters) -> dict[str, Credentials]:
    """Projects, settings and keys, straight in the database (the API cannot create them)."""
    from lytics import webhook_secrets
    from lytics.cli.database import transaction
    from lytics.crypto import Cipher
    from lytics.demo.model import CONVERSION_EVENTS, SITES
    from lytics.demo.sender import Credentials

    cipher = (
        Cipher(settings.require_secret_key(), webhook_secrets.CIPHER_PURPOSE)
        if params.webhooks
        else None
    )
    credentials: dict[str, Credentials] = {}
    with transaction(settings) as conn:
        for index, slug in enumerate(params.slugs, start=1):
            site = SITES[(index - 1) % len(SITES)]
            project = _project(conn, slug, f"Demo {index}: {site.brand} (seed {params.seed})")
            _set_conversion_events(conn, project.id, CONVERSION_EVENTS)
            write, secret = _fresh_keys(conn, project.id)
            hook = _webhook_secret(conn, cipher, project.id) if cipher is not None else None
            credentials[slug] = Credentials(write, secret, hook)
    return credentials


def _send(
    requests: list[PlannedRequest],
    credentials: dict[str, Credentials],
    api_url: str,
    concurrency: int,
) -> SendReport:
    import asyncio
    import sys

    from lytics.demo.sender import send

    total = sum(r.items for r in requests)
    with click.progressbar(length=total, label="sending", file=sys.stderr, show_pos=True) as bar:
        return asyncio.run(
            send(requests, credentials, api_url, concurrency=concurrency, on_progress=bar.update)
        )


def _summary(report: SendReport, api_url: str) -> None:
    click.echo(
        f"sent {report.events_sent} events to {api_url} in {report.events_elapsed_s:.2f} s "
        f"({report.events_per_second:,.0f} events/s); all {report.requests} requests "
        f"in {report.elapsed_s:.2f} s"
    )
    click.echo(
        f"  events: {report.accepted} accepted, {report.duplicates} duplicates, "
        f"{report.rejected} rejected"
    )
    click.echo(
        f"  metrics: {report.metrics_stored} stored; webhooks: {report.webhooks_delivered} "
        f"stored, {report.webhooks_duplicate} duplicates"
    )
    click.echo(f"  retries: {report.retries}, failed requests: {report.failed_requests}")
    for error in report.errors:
        click.echo(f"  error: {error}", err=True)


def _show_keys(credentials: dict[str, Credentials], api_url: str, params: Parameters) -> None:
    """The keys that see the demo data: each run replaces the previous run's."""
    click.echo("\nprojects and their keys (new on every run; the previous run's are revoked):")
    for slug, keys in credentials.items():
        click.echo(f"  {slug}")
        click.echo(f"    write key  (SDKs, public):       {keys.write_key}")
        click.echo(f"    secret key (read API, servers):  {keys.secret_key}")
    first = next(iter(credentials.values()))
    click.echo(
        "\nRead the first project's tiles once Dagster has built the marts (a minute or two):\n"
        f"  curl -H 'Authorization: Bearer {first.secret_key}' \\\n"
        f"    '{api_url}/v1/dashboard/tiles?from={params.start_date}&to={params.end_date}'"
    )


@click.command()
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Same seed, same traffic: same events, messageIds and truth file.",
)
@click.option(
    "--projects",
    "project_count",
    type=click.IntRange(1, 100),
    default=2,
    show_default=True,
    help="Projects demo-s<seed>-1 .. -N (created or reused).",
)
@click.option(
    "--days",
    type=click.IntRange(1, 3660),
    default=7,
    show_default=True,
    help="UTC days of traffic, ending at --end-date.",
)
@click.option(
    "--visitors",
    type=click.IntRange(1, 1_000_000),
    default=200,
    show_default=True,
    help="Audience size per project (about a tenth visit on a given day).",
)
@click.option(
    "--api-url",
    help="Ingest API base URL [default: the one `lytics dev` serves, else LYTICS_API_HOST:PORT].",
)
@click.option(
    "--truth",
    "truth_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the ground truth [default: <data dir>/demo-truth-seed<N>.json].",
)
@click.option(
    "--end-date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Last UTC day, before today (YYYY-MM-DD) [default: yesterday].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 2500),
    default=100,
    show_default=True,
    help="Events per /v1/batch request.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Requests in flight.",
)
@click.option(
    "--webhooks/--no-webhooks",
    default=True,
    show_default=True,
    help="Also send signed Resend webhooks (email events).",
)
def demo(
    *,
    seed: int,
    project_count: int,
    days: int,
    visitors: int,
    api_url: str | None,
    truth_path: Path | None,
    end_date: datetime | None,
    batch_size: int,
    concurrency: int,
    webhooks: bool,
) -> None:
    """Send realistic, deterministic traffic through the ingest API and write its ground truth.

    Events go to /v1/batch, KPI metrics to /v1/metrics/ingest and signed Resend
    webhooks to /v1/webhooks/resend, over HTTP like any client. The truth file
    says what the warehouse must compute from them, per project and UTC day.
    Re-running a seed sends the same messageIds and svix-ids: no event or webhook
    is stored twice (metrics are re-pushed with the same values; the newest wins).
    """
    from lytics.addresses import served_addresses
    from lytics.demo import sender, truth
    from lytics.demo.model import Parameters, generate
    from lytics.settings import get_settings

    settings = get_settings()
    api_url = (api_url or served_addresses(settings).api_url).rstrip("/")
    today = datetime.now(UTC).date()
    last_day: date = end_date.date() if end_date else today - timedelta(days=1)
    if last_day >= today:
        # Today is not over: its later events would lie in the future, and the API
        # clamps times far ahead to their arrival, so the truth would not hold.
        raise click.BadParameter(
            f"{last_day} is not a complete day yet (today is {today}, UTC)",
            param_hint="--end-date",
        )
    params = Parameters(seed, project_count, days, visitors, last_day, webhooks)
    path = truth_path or settings.data_path / f"demo-truth-seed{seed}.json"

    try:
        sender.probe(api_url)  # before anything else: a wrong URL fails at once
    except sender.ApiUnreachableError as exc:
        raise click.ClickException(str(exc)) from exc
    traffic = generate(params)
    ground_truth = truth.compute(traffic)
    truth.write(ground_truth, path)
    click.echo(f"truth: {path} ({params.start_date} .. {params.end_date}, UTC)")

    credentials = _provision(settings, params)
    requests = sender.plan(traffic, ground_truth, batch_size)
    report = _send(requests, credentials, api_url, concurrency)
    _summary(report, api_url)
    _show_keys(credentials, api_url, params)
    if not report.ok:
        raise click.ClickException(
            f"{report.failed_requests} requests failed and {report.rejected} events were rejected"
        )
