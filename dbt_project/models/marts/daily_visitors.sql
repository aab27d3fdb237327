{{ config(
    unique_key=['project_id', 'visit_date', 'visitor_id'],
    meta={'day_column': 'visit_date'},
    indexes=[
        {'columns': ['project_id', 'visit_date', 'visitor_id'], 'unique': true},
        {'columns': ['built_at']},
    ],
) }}
-- One row per visitor and day: unique visitors over any range are exact, not sums of days.
-- Conversions are counted here too (track events named in the project's list), so
-- daily_site_metrics adds up this table instead of reading every event again.
-- A build recomputes the (visitor, day) pairs that rows loaded since its last build touch.
with touched as (
    select distinct project_id, event_date, visitor_id
    from {{ ref('int_events') }}
    where {{ rows_to_recompute('loaded_at', 'event_date') }}
)

select
    e.project_id,
    e.event_date as visit_date,
    e.visitor_id,
    count(*) as events,
    count(*) filter (where e.type = 'page') as pageviews,
    count(*) filter (where e.type = 'track' and e.event_name = any(p.conversion_events)) as conversions,
    {{ build_time() }} as built_at
from {{ ref('int_events') }} as e
join touched as t using (project_id, event_date, visitor_id)
left join {{ ref('stg_projects') }} as p using (project_id)
group by e.project_id, e.event_date, e.visitor_id
