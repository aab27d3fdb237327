"""The `lytics` command."""

from __future__ import annotations

import sys

import click

from lytics.cli.db import db
from lytics.cli.demo import demo
from lytics.cli.dev import dev
from lytics.cli.digests import digests
from lytics.cli.exports import exports
from lytics.cli.github import github
from lytics.cli.keys import keys
from lytics.cli.metrics import metrics
from lytics.cli.privacy import privacy
from lytics.cli.projects import projects
from lytics.cli.retention import retention
from lytics.cli.webhooks import webhooks

# Command modules import their heavy dependencies (SQLAlchemy, Alembic, pydantic)
# inside the commands, so `lytics --help` answers at once.


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lytics")
def cli() -> None:
    """Lytics: self-hostable analytics on Postgres, Dagster and dbt.

    Without DATABASE_URL every command uses the embedded Postgres in the data
    folder (LYTICS_DATA_DIR, default ./.lytics), starting it if needed.
    """


cli.add_command(dev)
cli.add_command(db)
cli.add_command(projects)
cli.add_command(keys)
cli.add_command(demo)
cli.add_command(webhooks)
cli.add_command(github)
cli.add_command(digests)
cli.add_command(exports)
cli.add_command(metrics)
cli.add_command(retention)
cli.add_command(privacy)


def _exit_code_for(exc: Exception) -> int | None:
    """Errors a user can fix get one clear line and an exit code, not a traceback."""
    from alembic.util import CommandError
    from sqlalchemy.exc import OperationalError

    from lytics.api_keys import KeyNotFoundError
    from lytics.projects import ProjectExistsError, ProjectNotFoundError
    from lytics.settings import MissingSettingError

    if isinstance(exc, OperationalError):
        click.echo(f"error: cannot reach the database: {exc.orig}", err=True)
        return 3
    user_errors = (
        MissingSettingError,
        ProjectExistsError,
        ProjectNotFoundError,
        KeyNotFoundError,
        ValueError,
        CommandError,  # Alembic's: an unknown revision for `lytics db`
    )
    if isinstance(exc, user_errors):
        click.echo(f"error: {exc}", err=True)
        return 1
    return None


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:
        code = _exit_code_for(exc)
        if code is None:
            raise
        sys.exit(code)
