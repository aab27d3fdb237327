{{ config(meta={'day_column': 'metric_date'}) }}
-- The {{ var('top_n') }} most viewed paths per project and day.
-- Counted in two hashed steps (per visitor and path, then per path) rather than with
-- count(distinct visitor_id), which would sort every pageview of the window.
with per_visitor as (
    select project_id, event_date as metric_date, coalesce(path, '(unknown)') as path, visitor_id,
           count(*) as pageviews
    from {{ ref('stg_events') }}
    where type = 'page' and event_at >= {{ window_start_ts() }} and event_at < {{ window_end_ts() }}
      and {{ upto_watermark('event_id') }}
    group by 1, 2, 3, 4
),

counted as (
    select project_id, metric_date, path, sum(pageviews)::bigint as pageviews, count(*) as visitors
    from per_visitor
    group by 1, 2, 3
),

ranked as (
    select *, row_number() over (partition by project_id, metric_date order by pageviews desc, path) as rank
    from counted
)

select * from ranked where rank <= {{ var('top_n') }}
