{{ config(meta={'day_column': 'metric_date'}) }}
-- Campaign sources (utm_source) of sessions.
with counted as (
    select project_id, session_date as metric_date, utm_source, count(*) as sessions
    from {{ ref('fct_sessions') }}
    where {{ in_window('session_date') }} and utm_source is not null
    group by 1, 2, 3
),

ranked as (
    select *, row_number() over (partition by project_id, metric_date order by sessions desc, utm_source) as rank
    from counted
)

select * from ranked where rank <= {{ var('top_n') }}
