{{ config(
    meta={'day_column': 'metric_date'},
    indexes=[{'columns': ['project_id', 'metric_date'], 'unique': true}],
) }}
-- The dashboard's numbers per project and day.
-- Events, pageviews, unique visitors and conversions are sums over daily_visitors
-- (one row per visitor and day, built in the same run from the same rows): this
-- model reads no events itself.
with visitors as (
    select
        project_id,
        visit_date as metric_date,
        sum(events)::bigint as events,
        sum(pageviews)::bigint as pageviews,
        count(visitor_id) as unique_visitors,
        sum(conversions)::bigint as conversions
    from {{ ref('daily_visitors') }}
    where {{ in_window('visit_date') }}
    group by project_id, visit_date
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
from visitors as d
left join sessions as s using (project_id, metric_date)
