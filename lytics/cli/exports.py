"""`lytics exports`: export destinations per project and for backups, and backfills."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from lytics.exports.destinations import Destination
    from lytics.exports.windows import Frequency


@click.group()
def exports() -> None:
    """Export destinations per project and for backups, and backfills.

    Every export goes to the project's destinations and to the backup
    destination(s). Re-exporting a range: `lytics exports backfill`.
    """


@exports.group()
def destinations() -> None:
    """Where exports go: S3 buckets (any S3-compatible store) or local folders."""


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _owner(conn: Connection, project: str | None, backup: bool) -> int | None:
    from lytics.projects import get_project

    if backup == (project is not None):
        _fail("give either --project SLUG or --backup")
    return None if backup else get_project(conn, str(project)).id


def _show(d: Destination) -> str:
    owner = "backup" if d.project_id is None else f"project {d.project_id}"
    state = "" if d.enabled else "  (disabled)"
    return (
        f"{d.name:<16} {owner:<12} {d.location}  {d.format} {d.frequency} "
        f"{','.join(d.datasets)}  credentials: {d.public()['credentials']}{state}"
    )


@destinations.command("add")
@click.option("--project", help="The project (slug) whose data goes there.")
@click.option("--backup", is_flag=True, help="A deployment-wide backup: every project's data.")
@click.option("--name", required=True, help="A name to refer to it (unique per project).")
@click.option("--kind", type=click.Choice(["s3", "local"]), default="s3", show_default=True)
@click.option("--bucket", help="S3 bucket (kind s3).")
@click.option("--prefix", default="", help="Key prefix inside the bucket or folder.")
@click.option("--region", help="S3 region (default: S3_REGION).")
@click.option("--endpoint-url", help="S3-compatible endpoint (default: S3_ENDPOINT_URL or AWS).")
@click.option("--path", "local_path", help="Folder (kind local).")
@click.option("--access-key-id", help="Stored encrypted; default: the AWS credential chain.")
@click.option("--secret-access-key", help="With --access-key-id; `-` reads it from stdin.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet", "jsonl", "csv"]),
    default="parquet",
    show_default=True,
)
@click.option(
    "--frequency", type=click.Choice(["hourly", "daily"]), default="daily", show_default=True
)
@click.option("--datasets", default="events", show_default=True, help="events,metrics")
@click.option("--test/--no-test", "probe", default=True, help="Write a probe object first.")
def add(  # click passes options by name
    *,
    project: str | None,
    backup: bool,
    name: str,
    kind: str,
    bucket: str | None,
    prefix: str,
    region: str | None,
    endpoint_url: str | None,
    local_path: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    fmt: str,
    frequency: str,
    datasets: str,
    probe: bool,
) -> None:
    """Add an export destination for PROJECT (or the backup)."""
    from sqlalchemy.exc import IntegrityError

    from lytics.cli.database import transaction
    from lytics.crypto import Cipher
    from lytics.exports import destinations as store
    from lytics.exports.stores import S3Credentials, StoreError
    from lytics.settings import get_settings

    settings = get_settings()
    credentials = None
    if access_key_id:
        if secret_access_key in (None, "-"):
            # Keeps the secret out of shell history and the process list.
            secret_access_key = sys.stdin.readline().strip()
        if not secret_access_key:
            _fail("--access-key-id needs --secret-access-key (or `-` and the secret on stdin)")
        credentials = S3Credentials(access_key_id, secret_access_key)
    elif secret_access_key:
        _fail("--secret-access-key needs --access-key-id")
    cipher = Cipher(settings.require_secret_key(), store.CIPHER_PURPOSE) if credentials else None
    try:
        with transaction(settings) as conn:
            added = store.add_destination(
                conn,
                project_id=_owner(conn, project, backup),
                name=name,
                kind=kind,
                bucket=bucket,
                prefix=prefix,
                region=region or (settings.s3_region if kind == "s3" else None),
                endpoint_url=endpoint_url or (settings.s3_endpoint_url if kind == "s3" else None),
                local_path=local_path,
                credentials=credentials,
                cipher=cipher,
                fmt=fmt,
                frequency=frequency,
                datasets=tuple(d.strip() for d in datasets.split(",") if d.strip()),
            )
            if probe:
                # Inside the transaction: a destination that cannot be written is not saved.
                try:
                    _probe(added)
                except StoreError as exc:
                    raise click.ClickException(
                        f"{exc} (nothing was saved; --no-test skips the probe)"
                    ) from None
    except IntegrityError:
        _fail(f"a destination named {name!r} already exists there")
    click.echo(f"added {_show(added)}")


def _probe(destination: Destination) -> None:
    from lytics.exports.destinations import open_store
    from lytics.exports.stores import probe
    from lytics.settings import get_settings

    probe(open_store(destination, get_settings()), destination.prefix)


@destinations.command("list")
@click.option("--project", help="Only this project's destinations.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(project: str | None, as_json: bool) -> None:
    """List destinations (never their credentials)."""
    from lytics.cli.database import transaction
    from lytics.exports.destinations import list_destinations
    from lytics.projects import get_project
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        project_id = get_project(conn, project).id if project else None
        found = list_destinations(conn, project_id=project_id)
    if as_json:
        click.echo(json.dumps([d.public() for d in found]))
        return
    for d in found:
        click.echo(_show(d))


@destinations.command("remove")
@click.argument("name")
@click.option("--project", help="The destination's project.")
@click.option("--backup", is_flag=True, help="A backup destination.")
def remove(name: str, project: str | None, backup: bool) -> None:
    """Remove destination NAME (files already exported stay where they are)."""
    from lytics.cli.database import transaction
    from lytics.exports.destinations import DestinationNotFoundError, remove_destination
    from lytics.settings import get_settings

    try:
        with transaction(get_settings()) as conn:
            removed = remove_destination(conn, _owner(conn, project, backup), name)
    except DestinationNotFoundError as exc:
        _fail(str(exc))
    click.echo(f"removed {removed.name} ({removed.location}); exported files were left in place")


@destinations.command("test")
@click.argument("name")
@click.option("--project", help="The destination's project.")
@click.option("--backup", is_flag=True, help="A backup destination.")
def test(name: str, project: str | None, backup: bool) -> None:
    """Write, read back and delete a probe object at destination NAME."""
    from lytics.cli.database import transaction
    from lytics.crypto import InvalidToken
    from lytics.exports.destinations import DestinationNotFoundError, get_destination
    from lytics.exports.stores import StoreError
    from lytics.settings import get_settings

    try:
        with transaction(get_settings()) as conn:
            found = get_destination(conn, _owner(conn, project, backup), name)
        _probe(found)
    except DestinationNotFoundError as exc:
        _fail(str(exc))
    except InvalidToken:
        _fail(
            "stored credentials cannot be decrypted: LYTICS_SECRET_KEY is not the key they "
            "were stored with"
        )
    except StoreError as exc:
        _fail(str(exc))
    click.echo(f"ok: {found.location} accepts writes, reads and deletes")


@exports.command("backfill")
@click.option("--since", required=True, help="Start (inclusive): YYYY-MM-DD or a time; UTC.")
@click.option("--until", required=True, help="End (exclusive): YYYY-MM-DD or a time; UTC.")
@click.option(
    "--frequency",
    type=click.Choice(["hourly", "daily"]),
    help="Only destinations of this cadence (default: each at its own).",
)
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    type=click.Choice(["events", "metrics"]),
    help="Repeatable; default: both.",
)
@click.option("--project", help="Only this project's own destinations (default: all, backups too).")
@click.option(
    "--force/--changed-only",
    default=True,
    show_default=True,
    help="Re-export partitions even when their source rows did not change.",
)
def backfill(
    *,
    since: str,
    until: str,
    frequency: Frequency | None,
    datasets: tuple[str, ...],
    project: str | None,
    force: bool,
) -> None:
    """Export a range of partitions again, as Dagster backfills (see them in the UI).

    Each destination gets the closed windows of its cadence in the range; the
    ones that get none are listed with the reason. Dates and times: see
    docs/exports.md (a time without an offset is UTC).
    """
    import asyncio
    from datetime import UTC

    from lytics.cli.database import transaction
    from lytics.dagster_api import DagsterApi, DagsterApiError
    from lytics.exports.moments import parse_moment
    from lytics.exports.run_requests import (
        RunRefusedError,
        RunRequest,
        launch,
        load_targets,
        plan_run,
    )
    from lytics.projects import get_project
    from lytics.settings import get_settings

    settings = get_settings()
    try:
        start, end = parse_moment(since), parse_moment(until)
    except ValueError as exc:
        _fail(str(exc))
    with transaction(settings) as conn:
        project_id = get_project(conn, project).id if project else None
        targets = load_targets(conn, settings, project_id)
    now = datetime.now(UTC)
    try:
        run = plan_run(
            targets,
            RunRequest(
                since=start,
                until=end,
                project_id=project_id,
                datasets=frozenset(datasets) if datasets else None,
                frequency=frequency,
                force=force,
            ),
            now=now,
            first=datetime.combine(settings.exports_start, datetime.min.time(), UTC),
        )
        answer = asyncio.run(
            launch(
                DagsterApi(settings.graphql_url, timeout_s=30), run, f"exports {since} to {until}"
            )
        )
    except (RunRefusedError, DagsterApiError) as exc:
        _fail(str(exc))
    for b in answer["backfills"]:
        click.echo(
            f"backfill {b['id']}: {b['partitions']} {b['frequency']} partitions queued "
            f"({b['first_partition']} to {b['last_partition']})"
        )
    for d in answer["destinations"]:
        click.echo(f"  {_named(d)}: {d['frequency']} {','.join(d['datasets'])}")
    for skipped in answer["skipped"]:
        click.echo(f"skipped {_named(skipped)}: {skipped['reason']}")


def _named(entry: dict[str, Any]) -> str:
    owner = "backup" if entry["project_id"] is None else f"project {entry['project_id']}"
    return f"{entry['destination']} ({owner})"
