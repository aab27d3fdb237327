{{ config(
    unique_key=['project_id', 'metric_date'],
    meta={'day_column': 'metric_date'},
    indexes=[{'columns': ['project_id', 'metric_date']}],
) }}
-- Where sessions came from: the referrer host of each session's first event ("(direct)"
-- without one), the {{ var('top_n') }} hosts with most sessions per project and day; ties go
-- to the host that sorts first. Recounted for the days whose sessions changed.
with touched as (
    select distinct project_id, session_date
    from {{ ref('fct_sessions') }}
    where {{ rows_to_recompute('built_at', 'session_date') }}
),

counted as (
    select s.project_id, s.session_date as metric_date,
           coalesce(s.referrer_host, '(direct)') as referrer, count(*) as sessions
    from {{ ref('fct_sessions') }} as s
    join touched using (project_id, session_date)
    group by 1, 2, 3
),

ranked as (
    select *, row_number() over (partition by project_id, metric_date order by sessions desc, referrer) as rank
    from counted
)

select project_id, metric_date, referrer, sessions, rank, {{ build_time() }} as built_at
from ranked
where rank <= {{ var('top_n') }}
