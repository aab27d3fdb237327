{{ config(meta={'day_column': 'metric_date'}) }}
-- The {{ var('top_n') }} most viewed paths per project and day, with their unique visitors.
-- The ranking needs pageviews only, so paths are ranked from a small per-path
-- aggregate first; visitors are then counted for the ranked paths alone, so the
-- costly per-(path, visitor) aggregate covers only their pageviews. Both steps hash
-- (no count(distinct), which would sort every pageview).
with pageviews as not materialized (
    select project_id, event_date as metric_date, coalesce(path, '(unknown)') as path, visitor_id
    from {{ ref('stg_events') }}
    where type = 'page' and event_at >= {{ window_start_ts() }} and event_at < {{ window_end_ts() }}
      and {{ upto_watermark('event_id') }}
),

top as materialized (
    select * from (
        select project_id, metric_date, path, pageviews,
               row_number() over (partition by project_id, metric_date order by pageviews desc, path) as rank
        from (
            select project_id, metric_date, path, count(*) as pageviews
            from pageviews
            group by 1, 2, 3
        ) as counted
    ) as ranked
    where rank <= {{ var('top_n') }}
),

visitors as (
    select project_id, metric_date, path, count(*) as visitors
    from (
        select project_id, metric_date, path, visitor_id
        from pageviews
        -- A semi-join against the few ranked paths (a join here made Postgres, which
        -- cannot know how few they are, sort every pageview for a merge join).
        where (project_id, metric_date, path) in (select project_id, metric_date, path from top)
        group by 1, 2, 3, 4
    ) as per_visitor
    group by 1, 2, 3
)

select top.project_id, top.metric_date, top.path, top.pageviews::bigint as pageviews,
       visitors.visitors, top.rank
from top
join visitors using (project_id, metric_date, path)
