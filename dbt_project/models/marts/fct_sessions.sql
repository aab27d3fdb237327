{{ config(
    unique_key=['project_id', 'session_date', 'session_group'],
    meta={'day_column': 'session_date'},
    indexes=[
        {'columns': ['project_id', 'session_date', 'session_group']},
        {'columns': ['built_at']},
    ],
) }}
-- One row per session and day. The SDK's session id when it sent one; otherwise
-- a visitor's events form a session until {{ var('session_timeout_minutes') }} minutes pass without one
-- (a gap of exactly that long stays in the session). Sessions are split at UTC
-- midnight, so every day can be rebuilt on its own.
--
-- `session_group` is what a session is computed from: `sid:<id>` (all events of the
-- day with that SDK session id, whichever visitors sent them) or `vis:<visitor>`
-- (the visitor's events of the day without a session id, split by inactivity into
-- sessions numbered 1, 2, ...). A build recomputes every group that rows loaded
-- since its last build touch, and replaces that group's sessions.
with loaded as (
    select project_id, event_date, visitor_id, session_id
    from {{ ref('int_events') }}
    where {{ rows_to_recompute('loaded_at', 'event_date') }}
),

events as (
    select e.project_id, e.event_date, e.visitor_id, e.session_id, e.event_id, e.event_at,
           e.type, e.path, e.referrer, e.utm_source
    from {{ ref('int_events') }} as e
    where (e.project_id, e.event_date, e.session_id) in (
        select project_id, event_date, session_id from loaded where session_id is not null
    )
    union all
    select e.project_id, e.event_date, e.visitor_id, e.session_id, e.event_id, e.event_at,
           e.type, e.path, e.referrer, e.utm_source
    from {{ ref('int_events') }} as e
    where e.session_id is null
      and (e.project_id, e.event_date, e.visitor_id) in (
          select project_id, event_date, visitor_id from loaded where session_id is null
      )
),

unlabelled as (
    select
        *,
        lag(event_at) over visitor_day as previous_at
    from events
    where session_id is null
    -- The visitor leads the partition key, in byte order ("C"): the same partitions,
    -- but the sort compares a short prefix of the key first.
    window visitor_day as (partition by visitor_id collate "C", project_id, event_date order by event_at, event_id)
),

inferred as (
    select
        *,
        sum(case
                when previous_at is null
                  or event_at - previous_at > interval '{{ var("session_timeout_minutes") }} minutes'
                then 1 else 0
            end) over (
                partition by visitor_id collate "C", project_id, event_date
                order by event_at, event_id
                rows between unbounded preceding and current row
            ) as session_number
    from unlabelled
),

-- A session is (reference, number): the SDK's id with number 0, or the visitor with
-- its 1-based inferred number.
keyed as (
    select project_id, event_date, session_id collate "C" as session_ref, 0::bigint as session_number,
           visitor_id, event_id, event_at, type, path, referrer, utm_source
    from events
    where session_id is not null
    union all
    select project_id, event_date, visitor_id collate "C", session_number,
           visitor_id, event_id, event_at, type, path, referrer, utm_source
    from inferred
),

sessions as (
    select
        project_id,
        event_date as session_date,
        case when session_number = 0 then 'sid:' || session_ref else 'vis:' || session_ref end
            as session_group,
        case when session_number = 0 then 'sid:' || session_ref
             else 'inf:' || session_ref || ':' || session_number end as session_key,
        min(visitor_id) as visitor_id,
        min(event_at) as started_at,
        max(event_at) as ended_at,
        extract(epoch from max(event_at) - min(event_at))::numeric(12, 3) as duration_seconds,
        count(*) as events,
        count(*) filter (where type = 'page') as pageviews,
        -- A bounce: the session is a single pageview and nothing else.
        (count(*) = 1 and bool_and(type = 'page')) as is_bounce,
        -- The three ordered aggregates share one ordering, so Postgres sorts the input
        -- once (by group, then time) and feeds every aggregate presorted rows.
        (array_agg(path order by event_at, event_id) filter (where type = 'page'))[1] as landing_path,
        (array_agg(referrer order by event_at, event_id))[1] as first_referrer,
        (array_agg(utm_source order by event_at, event_id) filter (where utm_source is not null))[1] as utm_source
    from keyed
    group by session_ref, session_number, project_id, event_date
)

select
    project_id, session_date, session_key, session_group, visitor_id, started_at, ended_at,
    duration_seconds, events, pageviews, is_bounce, landing_path,
    {{ url_host('first_referrer') }} as referrer_host, utm_source,
    {{ build_time() }} as built_at
from sessions
