{{ config(meta={'day_column': 'event_date'}) }}
select project_id, event_date, event_type, count(*) as events, count(distinct email) as recipients
from {{ ref('stg_email_events') }}
where {{ in_window('event_date') }}
group by project_id, event_date, event_type
