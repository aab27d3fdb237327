-- Pushed KPI metrics: raw keeps every push; the newest one per key is the value.
select distinct on (project_id, source, metric_name, metric_date)
    project_id,
    source,
    metric_name,
    metric_value,
    metric_date,
    meta,
    received_at
from {{ source('raw', 'metrics') }}
order by project_id, source, metric_name, metric_date, received_at desc, id desc
