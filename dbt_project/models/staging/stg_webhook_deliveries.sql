select
    id as delivery_pk,
    project_id,
    provider as source,
    delivery_id,
    event_type,
    sender,
    received_at,
    (received_at at time zone 'UTC')::date as received_date,
    payload
from {{ source('raw', 'webhook_deliveries') }}
