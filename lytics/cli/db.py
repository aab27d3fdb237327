"""`lytics db`: schema migrations."""

from __future__ import annotations

import click


@click.group()
def db() -> None:
    """Apply, revert and inspect schema migrations."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Migrate the schema forward to REVISION (default: head)."""
    from lytics.cli.database import database_url
    from lytics.settings import get_settings
    from lytics.warehouse import migrate

    with database_url(get_settings()) as url:
        migrate.upgrade(url, revision)
        click.echo(f"database at revision {migrate.current_revision(url)}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Migrate the schema back to REVISION (e.g. -1, or base to remove everything)."""
    from lytics.cli.database import database_url
    from lytics.settings import get_settings
    from lytics.warehouse import migrate

    with database_url(get_settings()) as url:
        migrate.downgrade(url, revision)
        click.echo(f"database at revision {migrate.current_revision(url) or 'base'}")


@db.command()
def current() -> None:
    """Print the database's revision and the newest one available."""
    from lytics.cli.database import database_url
    from lytics.settings import get_settings
    from lytics.warehouse import migrate

    with database_url(get_settings()) as url:
        now = migrate.current_revision(url)
    head = migrate.head_revision()
    state = "up to date" if now == head else "behind: run `lytics db upgrade`"
    click.echo(f"current: {now or 'base'}\nhead:    {head}\n{state}")
