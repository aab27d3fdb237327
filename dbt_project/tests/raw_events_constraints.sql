-- stg_events is raw.events row for row, and Postgres already guarantees its keys:
-- a primary key on id, one row per (project_id, message_id), non-null ids and a
-- check on the event type. Re-testing those with unique / not_null /
-- accepted_values would scan the whole window on every build to confirm what the
-- database refuses to store otherwise; this test instead fails, in constant time,
-- if any of those constraints is missing. It is attached to stg_events (below), so
-- Dagster shows it as that asset's check; the table it inspects is raw.events itself.
-- depends_on: {{ ref('stg_events') }}
with expected (kind, columns) as (
    values
        ('primary key', 'id'),
        ('unique', 'project_id,message_id'),
        ('check', 'type'),
        ('not null', 'id'),
        ('not null', 'project_id'),
        ('not null', 'message_id'),
        ('not null', 'type'),
        ('not null', 'timestamp')
),

present as (
    select
        case c.contype when 'p' then 'primary key' when 'u' then 'unique' else 'check' end as kind,
        string_agg(a.attname, ',' order by array_position(c.conkey, a.attnum)) as columns
    from pg_constraint as c
    join pg_attribute as a on a.attrelid = c.conrelid and a.attnum = any(c.conkey)
    where c.conrelid = 'raw.events'::regclass
      and c.contype in ('p', 'u', 'c')
    group by c.oid, c.contype
    union all
    select 'not null', attname
    from pg_attribute
    where attrelid = 'raw.events'::regclass
      and attnum > 0 and attnotnull and not attisdropped
)

select * from expected
except
select * from present
