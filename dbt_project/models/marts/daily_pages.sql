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
),

-- Joins (an `in` under an `or` would not become one, and `is not distinct from` is not
-- indexable): each touched path's pageviews come from int_events' partial index on
-- page events alone; page calls without a path are a group of their own.
pageviews as (
    select e.project_id, e.event_date, e.path, e.visitor_id
    from {{ ref('int_events') }} as e
    join touched as t
      on e.project_id = t.project_id and e.event_date = t.event_date and e.path = t.path
    where e.type = 'page'
    union all
    select e.project_id, e.event_date, e.path, e.visitor_id
    from {{ ref('int_events') }} as e
    join (select distinct project_id, event_date from touched where path is null) as t
      on e.project_id = t.project_id and e.event_date = t.event_date
    where e.type = 'page' and e.path is null
)

select
    project_id,
    event_date as metric_date,
    coalesce(path, '(unknown)') as path,
    count(*) as pageviews,
    count(distinct visitor_id) as visitors,
    {{ build_time() }} as built_at
from pageviews
group by project_id, event_date, coalesce(path, '(unknown)')
