{{ config(meta={'dagster': {'ref': {'name': 'daily_visitor_recency'}}}) }}
-- Each day of the window, daily_visitor_recency splits exactly the day's visitors by
-- their previous visit: its rows add up to daily_site_metrics.unique_visitors. A
-- failing row is a day and project where they do not (a histogram left stale by a
-- rebuild that missed its day would show here).
with recency as (
    select project_id, visit_date as day, sum(visitors) as visitors
    from {{ ref('daily_visitor_recency') }}
    where {{ in_window('visit_date') }}
    group by 1, 2
),

site as (
    select project_id, metric_date as day, unique_visitors as visitors
    from {{ ref('daily_site_metrics') }}
    where {{ in_window('metric_date') }}
)

select project_id, day, site.visitors as site_visitors, recency.visitors as recency_visitors
from site full join recency using (project_id, day)
where site.visitors is distinct from recency.visitors
