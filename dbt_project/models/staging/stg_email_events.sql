-- Resend's email events (Standard Webhooks payloads: {type: "email.bounced", created_at, data}).
select
    d.delivery_pk,
    d.project_id,
    d.delivery_id,
    replace(coalesce(d.payload ->> 'type', d.event_type), 'email.', '') as event_type,
    lower(coalesce(d.payload -> 'data' -> 'to' ->> 0, d.payload -> 'data' ->> 'to')) as email,
    d.payload -> 'data' ->> 'subject' as subject,
    d.payload -> 'data' ->> 'email_id' as email_id,
    d.received_at,
    -- When the email event happened (Resend's created_at), else when it reached us.
    coalesce({{ try_timestamptz("d.payload ->> 'created_at'") }}, d.received_at) as event_at,
    (coalesce({{ try_timestamptz("d.payload ->> 'created_at'") }}, d.received_at) at time zone 'UTC')::date
        as event_date
from {{ ref('stg_webhook_deliveries') }} as d
where d.source = 'resend'
  and coalesce(d.payload ->> 'type', d.event_type) like 'email.%'
