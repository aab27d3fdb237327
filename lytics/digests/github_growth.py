"""The seam where GitHub growth (stars, forks, ...) joins the digest.

The GitHub integration is being built on its own branch (issue: GitHub
extraction into the `github` schema). Until it lands this returns no tiles, and
the digest shows only the site and pushed metrics. When it lands, this
function reads the week's and the previous week's repository snapshots for
the project's connected repositories and returns one `Tile` per measure
(e.g. "GitHub stars" with the week-over-week change); nothing else in the
digest needs to change: content, insights and rendering take any tiles.
"""

from __future__ import annotations

from sqlalchemy import Connection

from lytics.metrics.periods import Period
from lytics.metrics.tiles import Tile


def tiles(conn: Connection, project_id: int, week: Period, previous: Period) -> list[Tile]:
    """GitHub growth tiles for the project, or none when GitHub is not connected."""
    del conn, project_id, week, previous  # used once the GitHub tables exist
    return []
