{{ config(
    unique_key=['project_id', 'metric_date', 'path'],
    meta={'day_column': 'metric_date'},
    indexes=[
        {'columns': ['project_id', 'metric_date', 'path'], 'unique': true},
        {'columns': ['built_at']},
    ],
) }}
-- Pageviews and unique visitors of every path per project and day ("(unknown)" for
-- a page call without a path). A build recomputes the paths that rows loaded since
-- its last build viewed; a path's cost is its own pageviews that day.
with touched as (
    select distinct project_id, event_date, path
    from {{ ref('int_events') }}
    where type = 'page' and {{ rows_to_recompute('loaded_at', 'event_date') }}
)

select
    e.project_id,
    e.event_date as metric_date,
    coalesce(e.path, '(unknown)') as path,
    count(*) as pageviews,
    count(distinct e.visitor_id) as visitors,
    {{ build_time() }} as built_at
from {{ ref('int_events') }} as e
where e.type = 'page'
  and (
      (e.project_id, e.event_date, e.path) in (select project_id, event_date, path from touched)
      -- `in` never matches a null path: page calls without one are a group of their own.
      or e.path is null and (e.project_id, e.event_date) in (
          select project_id, event_date from touched where path is null
      )
  )
group by e.project_id, e.event_date, coalesce(e.path, '(unknown)')
