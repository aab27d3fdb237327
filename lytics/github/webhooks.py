"""Which repository and streams a stored GitHub webhook delivery makes stale."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

# X-GitHub-Event -> the streams to re-read (the repository itself is always re-read:
# its counts move with stars, forks and issues).
EVENT_STREAMS: Mapping[str, tuple[str, ...]] = {
    "star": ("stargazers",),
    "watch": ("stargazers",),
    "fork": (),
    "issues": ("issues",),
    "pull_request": ("pull_requests",),
    "release": ("releases",),
    "push": ("commits",),
    "repository": (),
    "public": (),
}

PENDING = """
SELECT id, project_id, event_type, payload #>> '{repository,full_name}' AS full_name
FROM raw.webhook_deliveries
WHERE provider = 'github' AND id > :after
ORDER BY id
LIMIT :limit
"""


@dataclass
class Refresh:
    project_id: int
    repositories: set[str] = field(default_factory=set)
    streams: set[str] = field(default_factory=lambda: {"repositories"})
    last_delivery_id: int = 0


def pending_refreshes(
    conn: Connection, after: int, limit: int = 1000
) -> tuple[dict[int, Refresh], int]:
    """Refreshes per project for deliveries after `after`, and the new high-water mark."""
    refreshes: dict[int, Refresh] = {}
    last = after
    for row in conn.execute(text(PENDING), {"after": after, "limit": limit}):
        last = max(last, int(row.id))
        streams = EVENT_STREAMS.get(row.event_type or "")
        if streams is None or not row.full_name:
            continue  # ping, installation, ...: nothing to refresh
        refresh = refreshes.setdefault(int(row.project_id), Refresh(int(row.project_id)))
        refresh.repositories.add(str(row.full_name))
        refresh.streams.update(streams)
        refresh.last_delivery_id = int(row.id)
    return refreshes, last
