{{ config(
    unique_key=['project_id', 'visit_date'],
    meta={'day_column': 'visit_date'},
    indexes=[
        {'columns': ['project_id', 'visit_date', "coalesce(previous_visit_date, '-infinity'::date)"],
         'unique': true},
        {'columns': ['built_at']},
    ],
) }}
{#- The key's null (a first visit ever) is one value through coalesce: NULLS NOT
    DISTINCT would need Postgres 15, and the marts run on 14 too. -#}
-- Per project and day, how many of the day's visitors came back after which previous
-- day (null: their first day). A range's unique visitors are the visitors whose first
-- day inside the range it is: sum(visitors) over the range's days where the previous
-- day is null or before the range (lytics/metrics/tiles.py). That reads at most one
-- row per day and earlier day, however many visitors there were.
-- A build re-aggregates the days whose daily_visitors rows were rebuilt.
with touched as (
    select distinct project_id, visit_date
    from {{ ref('daily_visitors') }}
    where {{ rows_to_recompute('built_at', 'visit_date') }}
)

select
    v.project_id,
    v.visit_date,
    v.previous_visit_date,
    count(*) as visitors,
    {{ build_time() }} as built_at
from {{ ref('daily_visitors') }} as v
join touched as t on t.project_id = v.project_id and t.visit_date = v.visit_date
group by v.project_id, v.visit_date, v.previous_visit_date
