"""raw.events stores the client's ip and user agent once: in the payload when it holds them.

The columns `ip` and `user_agent` repeated `context.ip` / `context.userAgent` (a
beacon's `userAgent`) from the payload in most rows: ~130 of ~1,400 bytes of a row
(docs/benchmarks.md, "Bytes per event"). From this revision the writer fills them only
from the request (its address, its User-Agent header) when the payload holds no usable
value, and `raw.event_ip` / `raw.event_user_agent` give an event's value either way,
for rows written before and after: the payload's value when it is a non-empty string,
else the column. They are the one SQL statement of that rule (the normalizer states it
in Python, `lytics_ingest_api/events/normalize.py`; tests/test_ingest_events.py holds
the two together). No table rewrite: rows stored before keep their columns filled,
which the functions read the same way.

Downgrade copies the payload's values back into the columns (an UPDATE of the rows
written since, which the previous code reads directly), then drops the functions.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Where the payload holds each value, by the endpoint that received it (`source`):
# Segment and native calls in `context`, /collect beacons and pixels at the top (a
# beacon's address is never its own: only the request's). A value counts when it is a
# non-empty JSON string, as in the normalizer; anything else falls back to the column.
FUNCTIONS = """
CREATE FUNCTION raw.event_ip(source text, payload jsonb, ip text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        CASE WHEN source NOT IN ('collect', 'pixel')
                  AND jsonb_typeof(payload #> '{context,ip}') = 'string'
             THEN nullif(payload #>> '{context,ip}', '') END,
        ip)
$$;

CREATE FUNCTION raw.event_user_agent(source text, payload jsonb, user_agent text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        CASE WHEN source IN ('collect', 'pixel')
             THEN CASE WHEN jsonb_typeof(payload -> 'userAgent') = 'string'
                       THEN nullif(payload ->> 'userAgent', '') END
             ELSE CASE WHEN jsonb_typeof(payload #> '{context,userAgent}') = 'string'
                       THEN nullif(payload #>> '{context,userAgent}', '') END
        END,
        user_agent)
$$;
"""

IP_COMMENT = "The request's address, when the payload holds none: read raw.event_ip()"
USER_AGENT_COMMENT = (
    "The request's User-Agent, when the payload holds none: read raw.event_user_agent()"
)


def upgrade() -> None:
    op.execute(FUNCTIONS)
    op.alter_column("events", "ip", schema="raw", comment=IP_COMMENT)
    op.alter_column("events", "user_agent", schema="raw", comment=USER_AGENT_COMMENT)


def downgrade() -> None:
    # The previous code reads the columns as the event's values: give the rows written
    # since the upgrade theirs back before the functions go.
    op.execute(
        """
        UPDATE raw.events
        SET ip = raw.event_ip(source, payload, ip),
            user_agent = raw.event_user_agent(source, payload, user_agent)
        WHERE (ip IS NULL AND raw.event_ip(source, payload, ip) IS NOT NULL)
           OR (user_agent IS NULL AND raw.event_user_agent(source, payload, user_agent) IS NOT NULL)
        """
    )
    op.alter_column("events", "ip", schema="raw", comment=None, existing_comment=IP_COMMENT)
    op.alter_column(
        "events", "user_agent", schema="raw", comment=None, existing_comment=USER_AGENT_COMMENT
    )
    op.execute("DROP FUNCTION raw.event_user_agent(text, jsonb, text)")
    op.execute("DROP FUNCTION raw.event_ip(text, jsonb, text)")
