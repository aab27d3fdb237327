{{ config(
    pre_hook="{{ replace_window('visit_date') }}",
    meta={'day_column': 'visit_date'},
    indexes=[{'columns': ['project_id', 'visit_date']}],
) }}
-- One row per visitor and day: unique visitors over any range are exact, not sums of days.
select
    project_id,
    event_date as visit_date,
    visitor_id,
    count(*) as events,
    count(*) filter (where type = 'page') as pageviews
from {{ ref('stg_events') }}
where event_at >= {{ window_start_ts() }} and event_at < {{ window_end_ts() }}
      and {{ upto_watermark('event_id') }}
group by project_id, event_date, visitor_id
