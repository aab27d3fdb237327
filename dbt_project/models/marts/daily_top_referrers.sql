{{ config(meta={'day_column': 'metric_date'}) }}
-- Where sessions came from: the referrer host of each session's first event.
with counted as (
    select project_id, session_date as metric_date, coalesce(referrer_host, '(direct)') as referrer,
           count(*) as sessions
    from {{ ref('fct_sessions') }}
    where {{ in_window('session_date') }}
    group by 1, 2, 3
),

ranked as (
    select *, row_number() over (partition by project_id, metric_date order by sessions desc, referrer) as rank
    from counted
)

select * from ranked where rank <= {{ var('top_n') }}
