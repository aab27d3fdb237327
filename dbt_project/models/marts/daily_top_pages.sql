{{ config(pre_hook="{{ replace_window('metric_date') }}",
    meta={'day_column': 'metric_date'}) }}
-- The {{ var('top_n') }} most viewed paths per project and day.
with counted as (
    select project_id, event_date as metric_date, coalesce(path, '(unknown)') as path,
           count(*) as pageviews, count(distinct visitor_id) as visitors
    from {{ ref('stg_events') }}
    where type = 'page' and event_at >= {{ window_start_ts() }} and event_at < {{ window_end_ts() }}
      and {{ upto_watermark('event_id') }}
    group by 1, 2, 3
),

ranked as (
    select *, row_number() over (partition by project_id, metric_date order by pageviews desc, path) as rank
    from counted
)

select * from ranked where rank <= {{ var('top_n') }}
