"""`lytics privacy`: delete a person's data everywhere, and follow the request."""

from __future__ import annotations

import json

import click


@click.group()
def privacy() -> None:
    """Deletion requests (carried out by the privacy_deletions sensor in Dagster)."""


@privacy.command("delete")
@click.argument("project")
@click.option("--user-id", "user_ids", multiple=True, help="A userId of the person (repeatable).")
@click.option("--anonymous-id", "anonymous_ids", multiple=True, help="An anonymousId (repeatable).")
@click.option(
    "--email",
    "emails",
    multiple=True,
    help="An email of the person, for webhook payloads and replays (repeatable).",
)
def delete(
    project: str, user_ids: tuple[str, ...], anonymous_ids: tuple[str, ...], emails: tuple[str, ...]
) -> None:
    """Remove a person's data from PROJECT: raw events of every linked identity, replays,
    webhook payloads with their email, the marts' days and the export partitions
    that held them; later events from them are dropped at the door."""
    from lytics.cli.database import transaction
    from lytics.privacy.requests import create_request
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        request = create_request(
            conn,
            project,
            user_ids=list(user_ids),
            anonymous_ids=list(anonymous_ids),
            emails=list(emails),
            requested_by="cli",
        )
    click.echo(
        f"deletion request {request.id} for {project}: pending; "
        f"follow it with `lytics privacy status {request.id}`"
    )


@privacy.command("status")
@click.argument("request_id", type=int)
def status(request_id: int) -> None:
    """Where deletion request REQUEST_ID stands, and what it removed (counts only)."""
    from lytics.cli.database import transaction
    from lytics.privacy.requests import get_request
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        request = get_request(conn, request_id)
    click.echo(
        json.dumps(
            {
                "id": request.id,
                "status": request.status,
                "requested_at": request.requested_at.isoformat(),
                "finished_at": request.finished_at.isoformat() if request.finished_at else None,
                "summary": request.summary,
                "days_rebuilt": len(request.event_days),
                "error": request.error,
            },
            indent=2,
        )
    )
