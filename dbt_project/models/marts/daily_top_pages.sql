{{ config(
    unique_key=['project_id', 'metric_date'],
    meta={'day_column': 'metric_date'},
    indexes=[{'columns': ['project_id', 'metric_date']}],
) }}
-- The {{ var('top_n') }} most viewed paths per project and day with their unique visitors;
-- ties go to the path that sorts first. Re-ranked for the days whose paths changed.
with touched as (
    select distinct project_id, metric_date
    from {{ ref('daily_pages') }}
    where {{ rows_to_recompute('built_at', 'metric_date') }}
),

ranked as (
    select
        p.project_id, p.metric_date, p.path, p.pageviews, p.visitors,
        row_number() over (
            partition by p.project_id, p.metric_date order by p.pageviews desc, p.path
        ) as rank
    from {{ ref('daily_pages') }} as p
    join touched using (project_id, metric_date)
)

select project_id, metric_date, path, pageviews, visitors, rank, {{ build_time() }} as built_at
from ranked
where rank <= {{ var('top_n') }}
