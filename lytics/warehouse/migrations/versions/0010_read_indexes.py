"""Reads that cost their answer: indexes that fit the read API, counts kept as rows arrive.

With 5 million events, `GET /v1/events/recent` was a parallel sequential scan of
`raw.events` (nothing served "newest first within a project"), and `/v1/messages`,
`/v1/stats` read every delivery of the project. Now:

- `raw.events (project_id, received_at, id)`: the newest events of a project, and the
  keyset cursor `(received_at, id) < (...)`, straight from the index (scanned backward).
  The only index this adds to the ingest path; its cost is measured in
  docs/benchmarks.md (benchmarks/bench_reads.py).
- `raw.webhook_deliveries`: the same order overall, per source (this replaces
  `(project_id, provider, received_at)`, which also served the digest's reads) and per
  sender, so every filter of `/v1/messages` is an index range in the answer's order.
- Text search (`q`) over the string and number values of a delivery's payload: their
  words (runs of letters and digits, lower-cased, 'simple' configuration: no stemming,
  no stop words), `raw.webhook_search_document(payload)`, kept in the column
  `search_words` (a BEFORE INSERT trigger; existing rows are filled in batches) under a
  GIN index. A query matches the deliveries holding its words consecutively
  (`raw.webhook_search_query`). Stored, not an expression index: computing the words of
  each row the newest-first path reads costs ~0.1 ms, which made a word found in 1 % of
  the deliveries cost 0.4 s at 500k; stored, both paths cost what they read.
  Row-level security cannot use that index: `@@` is not leakproof, so for the reader
  Postgres must check the project before the match, row by row. The search is therefore
  a SECURITY DEFINER function that applies the reader's own predicate itself
  (`project_id = lytics.project_id`, nothing when unset) and lets the planner choose,
  with the query's real values, between the GIN index (rare words) and the newest-first
  index with a filter (common words).
- `/v1/stats` from counts kept by statement-level triggers in the same transaction as
  the deliveries (exact, never behind): `raw.webhook_totals` (deliveries and distinct
  senders per project), `raw.webhook_source_counts` (per project and source) and
  `raw.webhook_sender_counts` (per project and sender, indexed by count for the top
  senders). Deletions (retention, a person's deletion request) and TRUNCATE are counted
  too. The mart `daily_webhook_deliveries` is not used: it lags the raw table by a
  refresh, and distinct senders per day do not add up to distinct senders.

Every index is built `CONCURRENTLY` (outside the migration's transaction, in alembic's
autocommit block): on a big table, writes continue while it builds. A build that fails
leaves an invalid index; the migration then did not complete, and running it again drops
that index first.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READER_PROJECT_ID = "nullif(current_setting('lytics.project_id', true), '')::bigint"

# name -> definition, built in this order.
INDEXES = {
    "ix_events_project_id_received_at_id": "raw.events (project_id, received_at, id)",
    "ix_webhook_deliveries_project_id_received_at_id": (
        "raw.webhook_deliveries (project_id, received_at, id)"
    ),
    "ix_webhook_deliveries_project_id_provider_received_at_id": (
        "raw.webhook_deliveries (project_id, provider, received_at, id)"
    ),
    "ix_webhook_deliveries_project_id_sender_received_at_id": (
        "raw.webhook_deliveries (project_id, sender, received_at, id)"
    ),
    "ix_webhook_deliveries_search_words": "raw.webhook_deliveries USING gin (search_words)",
}
REPLACED = (
    "ix_webhook_deliveries_project_id_provider_received_at",
    "raw.webhook_deliveries (project_id, provider, received_at)",
)

# Words are runs of letters and digits: "email.bounced" is two words, "ann@example.com"
# three, so a search for "bounced" or for the address finds them. Keys are not words.
SEARCH_FUNCTIONS = """
CREATE FUNCTION raw.webhook_search_document(payload jsonb) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_tsvector('simple', regexp_replace(coalesce(string_agg(v #>> '{}', ' '), ''),
                                                '[^[:alnum:]]+', ' ', 'g'))
    FROM jsonb_path_query(payload, 'strict $.**') AS v
    WHERE jsonb_typeof(v) IN ('string', 'number')
$$;

CREATE FUNCTION raw.webhook_search_query(q text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT phraseto_tsquery('simple', regexp_replace(q, '[^[:alnum:]]+', ' ', 'g'))
$$;
"""

# Dynamic SQL so that each call is planned with its values: the planner then knows how
# common the words are, and which filters are absent.
SEARCH = f"""
CREATE FUNCTION raw.search_webhook_deliveries(
    words tsquery, only_provider text, only_sender text, since timestamptz,
    before_at timestamptz, before_id bigint, max_rows integer
) RETURNS SETOF raw.webhook_deliveries
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    RETURN QUERY EXECUTE $q$
        SELECT * FROM raw.webhook_deliveries
        WHERE project_id = {READER_PROJECT_ID}
          AND search_words @@ $1
          AND ($2::text IS NULL OR provider = $2)
          AND ($3::text IS NULL OR sender = $3)
          AND ($4::timestamptz IS NULL OR received_at >= $4)
          AND ($5::timestamptz IS NULL OR (received_at, id) < ($5, $6))
        ORDER BY received_at DESC, id DESC
        LIMIT $7
    $q$ USING words, only_provider, only_sender, since, before_at, before_id, max_rows;
END
$fn$
"""

SEARCH_SIGNATURE = (
    "raw.search_webhook_deliveries(tsquery, text, text, timestamptz, timestamptz, bigint, integer)"
)

SEARCH_WORDS = """
ALTER TABLE raw.webhook_deliveries ADD COLUMN search_words tsvector;
CREATE FUNCTION raw.fill_webhook_search_words() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.search_words := raw.webhook_search_document(NEW.payload);
    RETURN NEW;
END
$$;
CREATE TRIGGER fill_search_words BEFORE INSERT ON raw.webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION raw.fill_webhook_search_words();
"""
FILL_BATCH = 20_000

COUNT_TABLES = """
CREATE TABLE raw.webhook_totals (
    project_id bigint NOT NULL,
    messages bigint NOT NULL,
    senders bigint NOT NULL,
    CONSTRAINT pk_webhook_totals PRIMARY KEY (project_id)
);
CREATE TABLE raw.webhook_source_counts (
    project_id bigint NOT NULL,
    provider text NOT NULL,
    messages bigint NOT NULL,
    CONSTRAINT pk_webhook_source_counts PRIMARY KEY (project_id, provider)
);
CREATE TABLE raw.webhook_sender_counts (
    project_id bigint NOT NULL,
    sender text NOT NULL,
    messages bigint NOT NULL,
    CONSTRAINT pk_webhook_sender_counts PRIMARY KEY (project_id, sender)
);
CREATE INDEX ix_webhook_sender_counts_project_id_messages_sender
    ON raw.webhook_sender_counts (project_id, messages DESC, sender);
"""

# Statement-level, over the transition table: one upsert per statement however many rows
# (a COPY, a retention DELETE). Keys in a fixed order so concurrent writers lock the same
# count rows in the same order. SECURITY DEFINER: the ingest role writes no table but
# `raw.*` inserts.
COUNTING = """
CREATE FUNCTION raw.count_webhook_deliveries() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO raw.webhook_source_counts AS c (project_id, provider, messages)
        SELECT project_id, provider, count(*) FROM arrived GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (project_id, provider) DO UPDATE SET messages = c.messages + excluded.messages;
        -- A sender is new when this statement created its row: with DO NOTHING, a
        -- concurrent writer of the same new sender waits and then creates nothing.
        WITH created AS (
            INSERT INTO raw.webhook_sender_counts (project_id, sender, messages)
            SELECT DISTINCT project_id, sender, 0 FROM arrived WHERE sender IS NOT NULL
            ORDER BY 1, 2
            ON CONFLICT (project_id, sender) DO NOTHING
            RETURNING project_id
        ), per_project AS (
            SELECT a.project_id, count(*) AS messages,
                   (SELECT count(*) FROM created c WHERE c.project_id = a.project_id) AS senders
            FROM arrived a GROUP BY 1
        )
        INSERT INTO raw.webhook_totals AS t (project_id, messages, senders)
        SELECT project_id, messages, senders FROM per_project ORDER BY 1
        ON CONFLICT (project_id) DO UPDATE
        SET messages = t.messages + excluded.messages, senders = t.senders + excluded.senders;
        UPDATE raw.webhook_sender_counts c SET messages = c.messages + n.messages
        FROM (SELECT project_id, sender, count(*) AS messages FROM arrived
              WHERE sender IS NOT NULL GROUP BY 1, 2) n
        WHERE c.project_id = n.project_id AND c.sender = n.sender;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE raw.webhook_source_counts c SET messages = c.messages - gone.n
        FROM (SELECT project_id, provider, count(*) AS n FROM removed GROUP BY 1, 2) gone
        WHERE c.project_id = gone.project_id AND c.provider = gone.provider;
        DELETE FROM raw.webhook_source_counts WHERE messages <= 0;
        UPDATE raw.webhook_sender_counts c SET messages = c.messages - gone.n
        FROM (SELECT project_id, sender, count(*) AS n FROM removed WHERE sender IS NOT NULL
              GROUP BY 1, 2) gone
        WHERE c.project_id = gone.project_id AND c.sender = gone.sender;
        WITH emptied AS (
            DELETE FROM raw.webhook_sender_counts WHERE messages <= 0 RETURNING project_id
        ), per_project AS (
            SELECT r.project_id, count(*) AS messages,
                   (SELECT count(*) FROM emptied e WHERE e.project_id = r.project_id) AS senders
            FROM removed r GROUP BY 1
        )
        UPDATE raw.webhook_totals t
        SET messages = t.messages - p.messages, senders = t.senders - p.senders
        FROM per_project p WHERE t.project_id = p.project_id;
        DELETE FROM raw.webhook_totals WHERE messages <= 0;
    ELSE
        TRUNCATE raw.webhook_totals, raw.webhook_source_counts, raw.webhook_sender_counts;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER count_arrived AFTER INSERT ON raw.webhook_deliveries
    REFERENCING NEW TABLE AS arrived
    FOR EACH STATEMENT EXECUTE FUNCTION raw.count_webhook_deliveries();
CREATE TRIGGER count_removed AFTER DELETE ON raw.webhook_deliveries
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION raw.count_webhook_deliveries();
CREATE TRIGGER count_truncated AFTER TRUNCATE ON raw.webhook_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION raw.count_webhook_deliveries();
"""

# What was stored before the triggers existed. The table is locked against writes for
# the scan, so no delivery is counted twice or missed.
BACKFILL = """
LOCK TABLE raw.webhook_deliveries IN SHARE MODE;
INSERT INTO raw.webhook_source_counts (project_id, provider, messages)
SELECT project_id, provider, count(*) FROM raw.webhook_deliveries GROUP BY 1, 2;
INSERT INTO raw.webhook_sender_counts (project_id, sender, messages)
SELECT project_id, sender, count(*) FROM raw.webhook_deliveries WHERE sender IS NOT NULL
GROUP BY 1, 2;
INSERT INTO raw.webhook_totals (project_id, messages, senders)
SELECT project_id, count(*), count(DISTINCT sender) FROM raw.webhook_deliveries GROUP BY 1;
"""


COUNTED = ("webhook_totals", "webhook_source_counts", "webhook_sender_counts")


def _fill_search_words() -> None:
    """The words of the deliveries stored before the trigger, a batch per transaction."""
    bounds = op.get_bind().execute(
        sa.text("SELECT coalesce(min(id), 0), coalesce(max(id), -1) FROM raw.webhook_deliveries")
    )
    row = bounds.one()
    low: int = row[0]
    high: int = row[1]
    for start in range(low, high + 1, FILL_BATCH):
        op.execute(
            "UPDATE raw.webhook_deliveries SET search_words = raw.webhook_search_document(payload)"
            f" WHERE id >= {start} AND id < {start + FILL_BATCH} AND search_words IS NULL"
        )


def _grant_counts() -> None:
    for table in COUNTED:
        op.execute(f"ALTER TABLE raw.{table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"GRANT SELECT ON raw.{table} TO lytics_pipeline, lytics_reader")
        op.execute(
            f"CREATE POLICY pipeline_read ON raw.{table} FOR SELECT TO lytics_pipeline USING (true)"
        )
        op.execute(
            f"CREATE POLICY reader_own_project ON raw.{table} FOR SELECT TO lytics_reader "
            f"USING (project_id = {READER_PROJECT_ID})"
        )


def upgrade() -> None:
    op.execute(SEARCH_FUNCTIONS)
    op.execute(SEARCH)
    op.execute(f"REVOKE ALL ON FUNCTION {SEARCH_SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SEARCH_SIGNATURE} TO lytics_reader")
    op.execute(COUNT_TABLES)
    _grant_counts()
    op.execute(COUNTING)
    op.execute(BACKFILL)
    op.execute(SEARCH_WORDS)
    with op.get_context().autocommit_block():
        _fill_search_words()
        for name, definition in INDEXES.items():
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS raw.{name}")
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON {definition}")
        op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS raw.{REPLACED[0]}")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {REPLACED[0]} ON {REPLACED[1]}")
        for name in reversed(INDEXES):
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS raw.{name}")
    op.execute("DROP TRIGGER count_arrived ON raw.webhook_deliveries")
    op.execute("DROP TRIGGER count_removed ON raw.webhook_deliveries")
    op.execute("DROP TRIGGER count_truncated ON raw.webhook_deliveries")
    op.execute("DROP FUNCTION raw.count_webhook_deliveries()")
    op.execute(f"DROP TABLE {', '.join(f'raw.{table}' for table in COUNTED)}")
    op.execute("DROP TRIGGER fill_search_words ON raw.webhook_deliveries")
    op.execute("DROP FUNCTION raw.fill_webhook_search_words()")
    op.execute("ALTER TABLE raw.webhook_deliveries DROP COLUMN search_words")
    op.execute(f"DROP FUNCTION {SEARCH_SIGNATURE}")
    op.execute("DROP FUNCTION raw.webhook_search_query(text)")
    op.execute("DROP FUNCTION raw.webhook_search_document(jsonb)")
