{{ config(
    meta={'day_column': 'visit_date'},
    indexes=[{'columns': ['project_id', 'visit_date']}],
) }}
-- One row per visitor and day: unique visitors over any range are exact, not sums of days.
-- Conversions are counted here too (track events named in the project's list), so
-- daily_site_metrics adds up this table instead of reading every event again.
select
    e.project_id,
    e.event_date as visit_date,
    e.visitor_id,
    count(*) as events,
    count(*) filter (where e.type = 'page') as pageviews,
    count(*) filter (where e.type = 'track' and e.event_name = any(p.conversion_events)) as conversions
from {{ ref('stg_events') }} as e
left join {{ ref('stg_projects') }} as p using (project_id)
where e.event_at >= {{ window_start_ts() }} and e.event_at < {{ window_end_ts() }}
      and {{ upto_watermark('e.event_id') }}
group by e.project_id, e.event_date, e.visitor_id
