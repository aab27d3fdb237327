"""`lytics exports`: export destinations per project and for backups."""

from __future__ import annotations

import click


@click.group()
def exports() -> None:
    """Export destinations per project and for backups."""
