"""`lytics webhooks`: the secrets webhook senders sign their deliveries with."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from lytics.crypto import Cipher
    from lytics.settings import Settings
    from lytics.webhook_secrets import SourceInfo


@click.group()
def webhooks() -> None:
    """Signing secrets of webhook senders (resend, github, or any HMAC sender's name).

    Several secrets can be active at once: add the new one, switch the sender
    over, then remove the old one. Deliveries signed with any active secret
    are accepted; changes reach the ingest API within a few seconds.
    """


def _cipher(settings: Settings) -> Cipher:
    from lytics.crypto import Cipher
    from lytics.webhook_secrets import CIPHER_PURPOSE

    # LYTICS_SECRET_KEY, or the key `lytics dev` keeps in the data folder: the same one
    # the dev server hands to the ingest API, so both read the same secrets.
    return Cipher(settings.require_secret_key(), CIPHER_PURPOSE)


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _undecryptable() -> NoReturn:
    _fail(
        "stored webhook secrets cannot be decrypted: LYTICS_SECRET_KEY is not the key "
        "they were stored with"
    )


@webhooks.command("add-secret")
@click.argument("project")
@click.argument("source")
@click.option(
    "--secret",
    help="The sender's secret (`-` reads it from stdin). Default: generate one and print it once.",
)
def add_secret(project: str, source: str, secret: str | None) -> None:
    """Activate a signing secret for SOURCE webhooks of PROJECT."""
    from lytics import webhook_secrets
    from lytics.addresses import served_addresses
    from lytics.cli.database import transaction
    from lytics.crypto import InvalidToken
    from lytics.projects import get_project
    from lytics.settings import get_settings

    settings = get_settings()
    webhook_secrets.validate_source(source)
    value = secret
    if value is None:
        value = webhook_secrets.generate_secret(source)
    elif value == "-":
        # Keeps the secret out of shell history and the process list.
        value = sys.stdin.readline().strip()
    cipher = _cipher(settings)
    try:
        with transaction(settings) as conn:
            project_id = get_project(conn, project).id
            active = webhook_secrets.add_secret(conn, cipher, project_id, source, value)
    except InvalidToken:
        _undecryptable()
    click.echo(
        f"{source} secret {webhook_secrets.secret_prefix(value)}… is active for {project} "
        f"({active} active)"
    )
    if secret is None:
        click.echo(value)
        click.echo("This is the only time the secret is shown; give it to the sender now.")
    base = served_addresses(settings).public_url.rstrip("/")
    click.echo(f"Webhook URL: {base}/v1/webhooks/{source}?project={project}")


@webhooks.command("remove-secret")
@click.argument("project")
@click.argument("source")
@click.argument("prefix")
def remove_secret(project: str, source: str, prefix: str) -> None:
    """Deactivate the secret of SOURCE for PROJECT that starts with PREFIX."""
    from lytics import webhook_secrets
    from lytics.cli.database import transaction
    from lytics.crypto import InvalidToken
    from lytics.projects import get_project
    from lytics.settings import get_settings

    settings = get_settings()
    cipher = _cipher(settings)
    try:
        with transaction(settings) as conn:
            project_id = get_project(conn, project).id
            left = webhook_secrets.remove_secret(conn, cipher, project_id, source, prefix)
    except webhook_secrets.SecretNotFoundError as exc:
        _fail(str(exc))
    except InvalidToken:
        _undecryptable()
    click.echo(f"removed the {source} secret {prefix}… of {project} ({left} active)")
    if left == 0:
        click.echo(f"No secret is left: {source} deliveries for {project} are now refused.")


def _as_dict(info: SourceInfo) -> dict[str, object]:
    return {
        "project": info.project_slug,
        "source": info.source,
        "secrets": info.prefixes,
        "updated_at": info.updated_at.isoformat(),
    }


@webhooks.command("list")
@click.option("--project", help="Only this project's sources.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(project: str | None, as_json: bool) -> None:
    """List webhook sources and their secrets' prefixes (never the secrets)."""
    from lytics import webhook_secrets
    from lytics.cli.database import transaction
    from lytics.crypto import InvalidToken
    from lytics.projects import get_project
    from lytics.settings import get_settings

    settings = get_settings()
    cipher = _cipher(settings)
    try:
        with transaction(settings) as conn:
            project_id = get_project(conn, project).id if project else None
            rows = webhook_secrets.list_sources(conn, cipher, project_id)
    except InvalidToken:
        _undecryptable()
    if as_json:
        click.echo(json.dumps([_as_dict(info) for info in rows]))
        return
    for info in rows:
        shown = ", ".join(f"{p}…" for p in info.prefixes)
        click.echo(
            f"{info.project_slug:<20} {info.source:<16} {shown}  "
            f"updated {info.updated_at:%Y-%m-%d %H:%M}"
        )
