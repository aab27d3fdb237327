{{ config(meta={'day_column': 'received_date'}) }}
select project_id, received_date, source, count(*) as deliveries, count(distinct sender) as senders
from {{ ref('stg_webhook_deliveries') }}
where {{ in_window('received_date') }}
group by project_id, received_date, source
