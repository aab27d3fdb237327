"""`lytics keys`: write keys and secret keys."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from lytics.api_keys import KeyInfo, KeyKind


@click.group()
def keys() -> None:
    """Create, list, rotate and revoke project keys (secrets are shown once)."""


@keys.command("create")
@click.argument("project")
@click.option(
    "--kind",
    type=click.Choice(["write", "secret"]),
    required=True,
    help="write: public key for SDKs; secret: read API and servers.",
)
@click.option("--name", default="", help="A label to tell keys apart.")
def create(project: str, kind: KeyKind, name: str) -> None:
    """Issue a new key for PROJECT (its slug)."""
    from lytics import api_keys
    from lytics.cli.database import transaction
    from lytics.projects import get_project
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        issued = api_keys.create_key(conn, get_project(conn, project).id, kind, name)
    click.echo(f"key {issued.id} ({kind}) for {project}:\n{issued.plaintext}")
    click.echo("This is the only time the key is shown.")


def _as_dict(k: KeyInfo) -> dict[str, object]:
    return {
        "id": k.id,
        "project": k.project_slug,
        "kind": k.kind,
        "name": k.name,
        "prefix": k.prefix,
        "active": k.active(),
        "created_at": k.created_at.isoformat(),
        "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
        "expires_at": k.expires_at.isoformat() if k.expires_at else None,
    }


@keys.command("list")
@click.option("--project", help="Only this project's keys.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(project: str | None, as_json: bool) -> None:
    """List keys (prefixes only, never secrets)."""
    from lytics import api_keys
    from lytics.cli.database import transaction
    from lytics.projects import get_project
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        project_id = get_project(conn, project).id if project else None
        rows = api_keys.list_keys(conn, project_id)
    if as_json:
        click.echo(json.dumps([_as_dict(k) for k in rows]))
        return
    for k in rows:
        state = "active" if k.active() else "revoked" if k.revoked_at else "expired"
        expiry = f" expires {k.expires_at:%Y-%m-%d %H:%M}" if k.expires_at and k.active() else ""
        click.echo(
            f"{k.id:>5}  {k.project_slug:<20} {k.kind:<6} {k.prefix}…  {state}{expiry}  {k.name}"
        )


@keys.command("rotate")
@click.argument("key_id", type=int)
@click.option(
    "--grace-hours",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Keep the old key working this long so clients can switch.",
)
def rotate(key_id: int, grace_hours: float) -> None:
    """Replace key KEY_ID with a new one of the same kind."""
    from datetime import timedelta

    from lytics import api_keys
    from lytics.cli.database import transaction
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        issued = api_keys.rotate_key(conn, key_id, timedelta(hours=grace_hours))
    when = f"in {grace_hours:g} h" if grace_hours else "now"
    click.echo(f"new key {issued.id} replaces {key_id} (old key stops working {when}):")
    click.echo(issued.plaintext)


@keys.command("revoke")
@click.argument("key_id", type=int)
def revoke(key_id: int) -> None:
    """Revoke key KEY_ID at once."""
    from lytics import api_keys
    from lytics.cli.database import transaction
    from lytics.settings import get_settings

    with transaction(get_settings()) as conn:
        info = api_keys.revoke_key(conn, key_id)
    click.echo(f"revoked key {info.id} ({info.kind}, {info.prefix}…) of {info.project_slug}")
