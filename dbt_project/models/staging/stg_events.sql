-- Events with the corrected timestamp as the event time and a visitor identity.
-- raw.events is already one row per (project_id, message_id); marts filter the
-- window on event_at, which the BRIN index on raw.events.timestamp serves.
select
    e.id as event_id,
    e.project_id,
    e.message_id,
    e.type,
    e.event as event_name,
    coalesce(e.anonymous_id, 'user:' || e.user_id) as visitor_id,
    e.anonymous_id,
    e.user_id,
    e.session_id,
    e.timestamp as event_at,
    (e.timestamp at time zone 'UTC')::date as event_date,
    e.received_at,
    e.timestamp_clamped,
    e.url,
    e.path,
    e.referrer,
    {{ url_host('e.referrer') }} as referrer_host,
    e.utm_source,
    e.utm_medium,
    e.utm_campaign,
    e.source as intake
from {{ source('raw', 'events') }} as e
