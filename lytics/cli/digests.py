"""`lytics digests`: digest recipients, previews and suppressions."""

from __future__ import annotations

import click


@click.group()
def digests() -> None:
    """Digest recipients, previews and suppressions."""
