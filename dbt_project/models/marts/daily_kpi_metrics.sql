{{ config(
    unique_key=['project_id', 'metric_date'],
    meta={'day_column': 'metric_date'},
    indexes=[{'columns': ['project_id', 'metric_date']}],
) }}
-- Metrics pushed by integrations (sessions, conversions, reach, engagement, ...): the
-- newest value per source, name and day. Rebuilt for the days that new pushes touch.
with touched as (
    select distinct project_id, metric_date
    from {{ source('raw', 'metrics') }}
    where {{ raw_rows_to_recompute('received_at', 'metric_date') }}
)

select m.project_id, m.metric_date, m.source, m.metric_name, m.metric_value, m.received_at,
       {{ build_time() }} as built_at
from {{ ref('stg_metrics') }} as m
join touched using (project_id, metric_date)
