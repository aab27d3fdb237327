{#
  Every tenant sees only itself, in the marts too: a post-hook of every model
  (dbt_project.yml) that leaves the model's relation readable by `lytics_reader`
  only one project at a time, the project named by the transaction's
  `lytics.project_id` (the read API sets it; unset, the reader sees nothing).

  - Table (any materialization: table or incremental): row-level
    security on, and exactly two policies,
      reader_own_project  FOR SELECT TO lytics_reader
                          USING (project_id = nullif(current_setting('lytics.project_id', true), '')::bigint)
      pipeline_read       FOR SELECT TO lytics_pipeline USING (true)
    plus the dropping of any other policy that would let the reader see rows (policies
    are OR-ed: one more permissive policy would widen what it sees). A table without
    a `project_id` column gets no reader policy, so the reader sees none of its rows
    (default deny) until the model gains the column or stops being granted to it.
    The table's owner (the user dbt runs as) is not subject to row-level security.
  - View: security_invoker (Postgres 15+), so the reader reading it is subject to the
    row-level security of the tables beneath. Before 15 a view runs with its owner's
    rights and would bypass that, so the reader's SELECT on it is revoked.
  - Materialized view: row-level security does not exist for them; the reader's
    SELECT on it is revoked.

  Cheap and idempotent: it runs after every build of every model, incremental ones
  included. It reads the catalog first (no lock) and only alters what is missing or
  different, so on an unchanged table it takes no lock at all; ALTER TABLE and
  CREATE POLICY take an ACCESS EXCLUSIVE lock, which would wait for every reader of
  the mart. It runs inside the model's transaction, so a new or rebuilt relation is
  never visible before it is isolated.

  tests/test_tenant_isolation.py checks the outcome for every relation the reader
  can select, whatever its schema or model.
#}
{% macro tenant_isolation(relation=none) -%}
{%- set relation = relation if relation is not none else this -%}
{%- set name = adapter.quote(relation.schema) ~ '.' ~ adapter.quote(relation.identifier) -%}
{%- set name_literal = "'" ~ (name | replace("'", "''")) ~ "'" -%}
do $tenant_isolation$
declare
    rel regclass := pg_catalog.to_regclass({{ name_literal }});
    kind "char";
    rls boolean;
    options text[];
    reader oid := 'lytics_reader'::regrole;
    pipeline oid := 'lytics_pipeline'::regrole;
    -- The reader's predicate as Postgres prints it back (pg_get_expr), to see
    -- whether the existing policy is exactly this one. A mismatch only costs a
    -- recreation (and its lock), never a wrong policy.
    reader_qual constant text :=
        '(project_id = (NULLIF(current_setting(''lytics.project_id''::text, true), ''''::text))::bigint)';
    stale record;
begin
    if rel is null then
        return;  -- nothing was created (an ephemeral model)
    end if;
    select c.relkind, c.relrowsecurity, c.reloptions into kind, rls, options
    from pg_catalog.pg_class c where c.oid = rel;

    if kind in ('r', 'p') then
        if not rls then
            execute format('alter table %s enable row level security', rel);
        end if;

        -- Any policy the reader is subject to, other than exactly ours, goes.
        for stale in
            select p.polname from pg_catalog.pg_policy p
            where p.polrelid = rel
              and (p.polroles && array[reader, 0::oid])
              and not (p.polname = 'reader_own_project'
                       and p.polcmd = 'r' and p.polpermissive
                       and p.polroles = array[reader]
                       and pg_catalog.pg_get_expr(p.polqual, p.polrelid) = reader_qual)
        loop
            execute format('drop policy %I on %s', stale.polname, rel);
        end loop;

        if not exists (
            select from pg_catalog.pg_attribute a
            where a.attrelid = rel and a.attname = 'project_id' and a.attnum > 0
              and not a.attisdropped
        ) then
            if pg_catalog.has_table_privilege(reader, rel, 'select') then
                raise warning 'tenant_isolation: % has no project_id column: '
                              'lytics_reader sees none of its rows', rel;
            end if;
        elsif not exists (
            select from pg_catalog.pg_policy p
            where p.polrelid = rel and p.polname = 'reader_own_project'
        ) then
            execute format(
                'create policy reader_own_project on %s as permissive for select to lytics_reader '
                'using (project_id = nullif(current_setting(''lytics.project_id'', true), '''')::bigint)',
                rel);
        end if;

        if not exists (
            select from pg_catalog.pg_policy p
            where p.polrelid = rel and p.polname = 'pipeline_read'
              and p.polcmd = 'r' and p.polpermissive and p.polroles = array[pipeline]
              and pg_catalog.pg_get_expr(p.polqual, p.polrelid) = 'true'
        ) then
            if exists (select from pg_catalog.pg_policy p
                       where p.polrelid = rel and p.polname = 'pipeline_read') then
                execute format('drop policy pipeline_read on %s', rel);
            end if;
            execute format(
                'create policy pipeline_read on %s as permissive for select to lytics_pipeline '
                'using (true)', rel);
        end if;

    elsif kind = 'v' then
        if pg_catalog.current_setting('server_version_num')::int >= 150000 then
            if not coalesce('security_invoker=true' = any(options), false) then
                execute format('alter view %s set (security_invoker = true)', rel);
            end if;
        elsif pg_catalog.has_table_privilege(reader, rel, 'select') then
            execute format('revoke select on %s from lytics_reader', rel);
            raise warning 'tenant_isolation: % is a view on Postgres < 15 (no security_invoker): '
                          'lytics_reader may not select it', rel;
        end if;

    elsif kind = 'm' then
        if pg_catalog.has_table_privilege(reader, rel, 'select') then
            execute format('revoke select on %s from lytics_reader', rel);
            raise warning 'tenant_isolation: % is a materialized view (no row-level security): '
                          'lytics_reader may not select it', rel;
        end if;
    end if;
end
$tenant_isolation$
{%- endmacro %}
