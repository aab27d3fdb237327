{{ config(meta={'dagster': {'ref': {'name': 'daily_site_metrics'}}}) }}
-- Events and pageviews per project and day in daily_site_metrics equal the raw rows
-- of the window, up to the newest event the marts have loaded (rows that arrive
-- during the build wait for the next one). Each failing row is a day and project
-- where the two disagree. Days before a project's retention horizon are left out:
-- raw no longer holds them, the marts keep what they counted.
with loaded as (
    select coalesce(max(event_id), 0) as up_to from {{ ref('int_events') }}
),

raw as (
    select e.project_id, (e.timestamp at time zone 'UTC')::date as day,
           count(*) as events, count(*) filter (where e.type = 'page') as pageviews
    from {{ source('raw', 'events') }} as e
    where e.project_id in (select project_id from {{ ref('stg_projects') }})
      and e.timestamp >= {{ window_start_ts() }} and e.timestamp < {{ window_end_ts() }}
      and e.id <= (select up_to from loaded)
      and not {{ before_horizon('e.project_id', 'e.timestamp') }}
    group by 1, 2
),

mart as (
    select project_id, metric_date as day, events, pageviews
    from {{ ref('daily_site_metrics') }} as m
    where {{ in_window('metric_date') }}
      and not {{ before_horizon('m.project_id', "m.metric_date::timestamp at time zone 'UTC'") }}
)

select project_id, day, raw.events as raw_events, mart.events as mart_events,
       raw.pageviews as raw_pageviews, mart.pageviews as mart_pageviews
from raw full join mart using (project_id, day)
where raw.events is distinct from mart.events or raw.pageviews is distinct from mart.pageviews
