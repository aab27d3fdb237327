{{ config(severity='warn') }}
-- The window's last day has 0.5x to 3x the median events of the same weekday over the
-- four weeks before, per project (with at least three of those days on record and a
-- median of at least 20, below which any count is normal). A warning: traffic does
-- spike, and the data team decides.
with last_day as (
    select {{ window_end() }} - 1 as day
),

days as (
    select m.project_id, m.metric_date, m.events
    from {{ ref('daily_site_metrics') }} as m, last_day
    where m.metric_date = last_day.day
       or m.metric_date in (select last_day.day - 7 * k from generate_series(1, 4) as k)
),

history as (
    select project_id, count(*) as weeks,
           percentile_cont(0.5) within group (order by events) as weekday_median
    from days, last_day
    where metric_date < last_day.day
    group by project_id
)

select h.project_id, l.day, coalesce(d.events, 0) as events, h.weekday_median
from history as h
cross join last_day as l
left join days as d on d.project_id = h.project_id and d.metric_date = l.day
where h.weeks >= 3 and h.weekday_median >= 20
  and not coalesce(d.events, 0) between 0.5 * h.weekday_median and 3 * h.weekday_median
