{{ config(
    unique_key=['project_id', 'metric_date'],
    meta={'day_column': 'metric_date'},
    indexes=[{'columns': ['project_id', 'metric_date'], 'unique': true}],
) }}
-- The dashboard's numbers per project and day, recomputed for the days whose visitors
-- or sessions changed. Events, pageviews, unique visitors and conversions are sums over
-- daily_visitors, the session figures aggregates of fct_sessions: this model reads no
-- events itself.
with touched as (
    select project_id, visit_date as metric_date
    from {{ ref('daily_visitors') }}
    where {{ rows_to_recompute('built_at', 'visit_date') }}
    union
    select project_id, session_date
    from {{ ref('fct_sessions') }}
    where {{ rows_to_recompute('built_at', 'session_date') }}
),

visitors as (
    select
        v.project_id,
        v.visit_date as metric_date,
        sum(v.events)::bigint as events,
        sum(v.pageviews)::bigint as pageviews,
        count(*) as unique_visitors,
        sum(v.conversions)::bigint as conversions
    from {{ ref('daily_visitors') }} as v
    join touched as t on t.project_id = v.project_id and t.metric_date = v.visit_date
    group by v.project_id, v.visit_date
),

sessions as (
    select
        s.project_id,
        s.session_date as metric_date,
        count(*) as sessions,
        count(*) filter (where s.is_bounce) as bounces,
        sum(s.duration_seconds) as total_session_duration_seconds
    from {{ ref('fct_sessions') }} as s
    join touched as t on t.project_id = s.project_id and t.metric_date = s.session_date
    group by s.project_id, s.session_date
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
    round(s.total_session_duration_seconds / s.sessions, 1) as avg_session_duration_seconds,
    coalesce(s.total_session_duration_seconds, 0) as total_session_duration_seconds,
    d.conversions,
    {{ build_time() }} as built_at
from visitors as d
left join sessions as s using (project_id, metric_date)
