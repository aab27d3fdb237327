{{ config(
    unique_key=['project_id', 'received_date'],
    meta={'day_column': 'received_date'},
) }}
-- Verified webhook deliveries per project, day of receipt and source, with the
-- distinct senders. Rebuilt for the days that new deliveries touch.
with touched as (
    select distinct project_id, received_date
    from {{ ref('stg_webhook_deliveries') }}
    where {{ raw_rows_to_recompute('received_at', 'received_date') }}
)

select d.project_id, d.received_date, d.source, count(*) as deliveries,
       count(distinct d.sender) as senders, {{ build_time() }} as built_at
from {{ ref('stg_webhook_deliveries') }} as d
join touched using (project_id, received_date)
group by d.project_id, d.received_date, d.source
