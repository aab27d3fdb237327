{{ config(
    pre_hook="{{ replace_window('metric_date') }}",
    meta={'day_column': 'metric_date'},
    indexes=[{'columns': ['project_id', 'metric_date'], 'unique': true}],
) }}
-- The dashboard's numbers per project and day.
with events as (
    select e.*, (e.type = 'track' and e.event_name = any(p.conversion_events)) as is_conversion
    from {{ ref('stg_events') }} as e
    join {{ ref('stg_projects') }} as p using (project_id)
    where e.event_at >= {{ window_start_ts() }} and e.event_at < {{ window_end_ts() }}
      and {{ upto_watermark('e.event_id') }}
),

by_day as (
    select
        project_id,
        event_date as metric_date,
        count(*) as events,
        count(*) filter (where type = 'page') as pageviews,
        count(distinct visitor_id) as unique_visitors,
        count(*) filter (where is_conversion) as conversions
    from events
    group by project_id, event_date
),

sessions as (
    select
        project_id,
        session_date as metric_date,
        count(*) as sessions,
        count(*) filter (where is_bounce) as bounces,
        avg(duration_seconds) as avg_session_duration_seconds
    from {{ ref('fct_sessions') }}
    where {{ in_window('session_date') }}
    group by project_id, session_date
)

select
    d.project_id,
    d.metric_date,
    d.events,
    d.pageviews,
    d.unique_visitors,
    coalesce(s.sessions, 0) as sessions,
    coalesce(s.bounces, 0) as bounces,
    case when coalesce(s.sessions, 0) = 0 then null
         else round(s.bounces::numeric / s.sessions, 4) end as bounce_rate,
    round(s.avg_session_duration_seconds, 1) as avg_session_duration_seconds,
    d.conversions
from by_day as d
left join sessions as s using (project_id, metric_date)
