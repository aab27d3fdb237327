{{ config(
    meta={'day_column': 'metric_date'},
    indexes=[{'columns': ['project_id', 'metric_date']}],
) }}
-- Metrics pushed by integrations (sessions, conversions, reach, engagement, ...), newest value.
select project_id, metric_date, source, metric_name, metric_value, received_at
from {{ ref('stg_metrics') }}
where {{ in_window('metric_date') }}
