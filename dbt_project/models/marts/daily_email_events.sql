{{ config(
    unique_key=['project_id', 'event_date'],
    meta={'day_column': 'event_date'},
) }}
-- Resend email events per project, day (of Resend's created_at) and type, with the
-- distinct recipients. Rebuilt for the days that new deliveries touch.
with touched as (
    select distinct project_id, event_date
    from {{ ref('stg_email_events') }}
    where {{ raw_rows_to_recompute('received_at', 'event_date') }}
)

select e.project_id, e.event_date, e.event_type, count(*) as events,
       count(distinct e.email) as recipients, {{ build_time() }} as built_at
from {{ ref('stg_email_events') }} as e
join touched using (project_id, event_date)
group by e.project_id, e.event_date, e.event_type
