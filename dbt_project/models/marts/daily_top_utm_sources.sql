{{ config(
    unique_key=['project_id', 'metric_date'],
    meta={'day_column': 'metric_date'},
    indexes=[{'columns': ['project_id', 'metric_date']}],
) }}
-- Campaign sources (the first utm_source of each session), the {{ var('top_n') }} with most
-- sessions per project and day; ties go to the source that sorts first. Recounted for
-- the days whose sessions changed.
with touched as (
    select distinct project_id, session_date
    from {{ ref('fct_sessions') }}
    where {{ rows_to_recompute('built_at', 'session_date') }}
),

counted as (
    select s.project_id, s.session_date as metric_date, s.utm_source, count(*) as sessions
    from {{ ref('fct_sessions') }} as s
    join touched using (project_id, session_date)
    where s.utm_source is not null
    group by 1, 2, 3
),

ranked as (
    select *, row_number() over (partition by project_id, metric_date order by sessions desc, utm_source) as rank
    from counted
)

select project_id, metric_date, utm_source, sessions, rank, {{ build_time() }} as built_at
from ranked
where rank <= {{ var('top_n') }}
