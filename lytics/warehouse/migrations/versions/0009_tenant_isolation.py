"""Tenant isolation: `lytics_reader` sees one project's rows in every relation it can read.

Before this, two app tables had `reader_auth ... USING (true)` policies: a reader
scoped to project A could read every project (`app.projects`) and every key's
hash, kind and expiry (`app.api_keys`). They were there for authentication, which
happens before the project is known. The read API never authenticated through the
reader, though: its key lookups run as `lytics_ingest`, which may read the key and
project tables whole (it is the internet-facing role, and RLS does not narrow it:
0007 gave it BYPASSRLS).

Now:

- `app.verify_api_key(digest, kind)`: SECURITY DEFINER, owned by the migrating
  user, returns for one SHA-256 digest the active key's id, its project's id, slug
  and settings, and nothing else (no other key, no enumeration, no hash comes
  back). Only `lytics_ingest` may execute it; it is now the only way that role
  reads keys: its SELECT on `app.api_keys` (and the `ingest_read` policy there)
  is revoked, so an injection on the hot, unauthenticated ingest path could no
  longer list every key hash.
- `lytics_reader` loses `app.api_keys` altogether (it never needed it) and sees only
  its own row of `app.projects` (digest previews read the project's name).
- `app.digest_runs`: the scheduled runs (project_id NULL, the deployment's own rows)
  stay visible to a reader scoped to a project (`/v1/digest/status` shows them), but
  not to an unscoped reader, which now reads nothing anywhere.
- `analytics` (built by dbt): the dbt post-hook `tenant_isolation`
  (dbt_project/macros/tenant_isolation.sql) isolates every model when it is built.
  Tables built before that hook existed are isolated here, once, the same way, so a
  deployment is closed as soon as it is upgraded instead of after its next build:
  RLS and the reader's `project_id` policy on tables with a `project_id` column; the
  reader's SELECT revoked on anything else (views, materialized views, tables without
  the column). The next dbt build re-grants what it should, isolated.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READER_PROJECT_ID = "nullif(current_setting('lytics.project_id', true), '')::bigint"
READER_PROJECT = f"project_id = {READER_PROJECT_ID}"

VERIFY_API_KEY = """
CREATE FUNCTION app.verify_api_key(digest bytea, key_kind text)
RETURNS TABLE (key_id bigint, project_id bigint, project_slug text, settings jsonb)
LANGUAGE sql STABLE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT k.id, k.project_id, p.slug, p.settings
    FROM app.api_keys k JOIN app.projects p ON p.id = k.project_id
    WHERE k.key_hash = $1 AND k.kind = $2 AND k.revoked_at IS NULL
      AND (k.expires_at IS NULL OR k.expires_at > now())
$$
"""

# The dbt post-hook's work, once, on what an earlier dbt build left in `analytics`.
ISOLATE_EXISTING_ANALYTICS = f"""
DO $$
DECLARE
    rel record;
BEGIN
    FOR rel IN
        SELECT c.oid::regclass AS name, c.relkind, c.relrowsecurity,
               EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                       AND a.attname = 'project_id' AND a.attnum > 0
                       AND NOT a.attisdropped) AS has_project
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'analytics' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    LOOP
        IF rel.relkind IN ('r', 'p') AND rel.has_project THEN
            IF NOT rel.relrowsecurity THEN
                EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', rel.name);
            END IF;
            IF NOT EXISTS (SELECT FROM pg_policy WHERE polrelid = rel.name
                           AND polname = 'reader_own_project') THEN
                EXECUTE format('CREATE POLICY reader_own_project ON %s FOR SELECT '
                               'TO lytics_reader USING ({READER_PROJECT.replace("'", "''")})',
                               rel.name);
            END IF;
            IF NOT EXISTS (SELECT FROM pg_policy WHERE polrelid = rel.name
                           AND polname = 'pipeline_read') THEN
                EXECUTE format('CREATE POLICY pipeline_read ON %s FOR SELECT '
                               'TO lytics_pipeline USING (true)', rel.name);
            END IF;
        ELSIF has_table_privilege('lytics_reader', rel.name, 'SELECT') THEN
            EXECUTE format('REVOKE SELECT ON %s FROM lytics_reader', rel.name);
        END IF;
    END LOOP;
END
$$
"""


def upgrade() -> None:
    # Authentication: one key hash in, what verifying it needs out.
    op.execute(VERIFY_API_KEY)
    op.execute("REVOKE ALL ON FUNCTION app.verify_api_key(bytea, text) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION app.verify_api_key(bytea, text) TO lytics_ingest")
    op.execute("DROP POLICY ingest_read ON app.api_keys")
    op.execute("REVOKE SELECT ON app.api_keys FROM lytics_ingest")

    # The reader: no keys, its own project only.
    op.execute("DROP POLICY reader_auth ON app.api_keys")
    op.execute("REVOKE SELECT ON app.api_keys FROM lytics_reader")
    op.execute("DROP POLICY reader_auth ON app.projects")
    op.execute(
        "CREATE POLICY reader_own_project ON app.projects FOR SELECT TO lytics_reader "
        f"USING (id = {READER_PROJECT_ID})"
    )
    op.execute("DROP POLICY reader_read ON app.digest_runs")
    op.execute(
        "CREATE POLICY reader_read ON app.digest_runs FOR SELECT TO lytics_reader USING ("
        f"{READER_PROJECT} OR (project_id IS NULL AND {READER_PROJECT_ID} IS NOT NULL))"
    )

    op.execute(ISOLATE_EXISTING_ANALYTICS)


def downgrade() -> None:
    # `analytics` stays isolated: dbt owns it, and its post-hook keeps doing the same.
    op.execute("DROP POLICY reader_read ON app.digest_runs")
    op.execute(
        "CREATE POLICY reader_read ON app.digest_runs FOR SELECT TO lytics_reader "
        f"USING (project_id IS NULL OR {READER_PROJECT})"
    )
    op.execute("DROP POLICY reader_own_project ON app.projects")
    for table in ("projects", "api_keys"):
        op.execute(f"GRANT SELECT ON app.{table} TO lytics_reader")
        op.execute(
            f"CREATE POLICY reader_auth ON app.{table} FOR SELECT TO lytics_reader USING (true)"
        )
    op.execute("GRANT SELECT ON app.api_keys TO lytics_ingest")
    op.execute("CREATE POLICY ingest_read ON app.api_keys FOR SELECT TO lytics_ingest USING (true)")
    op.execute("DROP FUNCTION app.verify_api_key(bytea, text)")
