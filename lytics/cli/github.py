"""`lytics github`: connect GitHub accounts and repositories to a project."""

from __future__ import annotations

import click


@click.group()
def github() -> None:
    """Connect GitHub accounts and repositories to a project."""
