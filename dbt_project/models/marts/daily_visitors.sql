{{ config(
    unique_key=['project_id', 'visit_date', 'visitor_id'],
    meta={'day_column': 'visit_date'},
    indexes=[
        {'columns': ['project_id', 'visit_date', 'visitor_id'], 'unique': true},
        {'columns': ['project_id', 'visitor_id', 'visit_date']},
        {'columns': ['previous_visit_date']},
        {'columns': ['built_at']},
    ],
) }}
{#- A table built before previous_visit_date existed gets the column empty
    (append_new_columns): that build recomputes every row once, so no row keeps a null
    that would count a returning visitor as new. -#}
{%- set upgrading = execute and is_incremental()
    and 'previous_visit_date' not in (adapter.get_columns_in_relation(this) | map(attribute='name')) -%}
{%- set incremental = is_incremental() and not upgrading -%}
-- One row per visitor and day: unique visitors over any range are exact, not sums of days.
-- Conversions are counted here too (track events named in the project's list), so
-- daily_site_metrics adds up this table instead of reading every event again.
-- previous_visit_date (the visitor's last day with events before this one) lets
-- daily_visitor_recency count a range's unique visitors without reading its visitors.
--
-- A build recomputes the (visitor, day) pairs that rows loaded since its last build
-- touch, and with them every row whose previous_visit_date they can change: the
-- visitor's next day after each touched day (a late event for Tuesday is Thursday's
-- new previous day), and in a window rebuild every later row whose previous day lies
-- in the window (the window may have lost that day: a deletion request).
with touched as (
    select distinct project_id, event_date as visit_date, visitor_id
    from {{ ref('int_events') }}
    {%- if not upgrading %}
    where {{ rows_to_recompute('loaded_at', 'event_date') }}
    {%- endif %}
),

{% if incremental -%}
following as (
    select t.project_id, n.visit_date, t.visitor_id
    from touched as t
    cross join lateral (
        select o.visit_date
        from {{ this }} as o
        where o.project_id = t.project_id and o.visitor_id = t.visitor_id
          and o.visit_date > t.visit_date
        order by o.visit_date
        limit 1
    ) as n
),

units as (
    select project_id, visit_date, visitor_id, bool_or(is_touched) as is_touched
    from (
        select project_id, visit_date, visitor_id, true as is_touched from touched
        union all
        select project_id, visit_date, visitor_id, false from following
        {%- if refresh_mode() == 'window' %}
        union all
        select project_id, visit_date, visitor_id, false
        from {{ this }}
        where previous_visit_date >= {{ window_start() }}
          and previous_visit_date < {{ window_end() }}
          and visit_date >= {{ window_end() }}
        {%- endif %}
    ) as candidates
    group by project_id, visit_date, visitor_id
),

-- A visitor's days are the table's (outside the window, in a window rebuild) plus the
-- touched ones: the previous day is the later of the last of each before this day.
recency as (
    select
        u.project_id,
        u.visit_date,
        u.visitor_id,
        greatest(
            (select max(o.visit_date)
             from {{ this }} as o
             where o.project_id = u.project_id and o.visitor_id = u.visitor_id
               and o.visit_date < u.visit_date),
            max(case when u.is_touched then u.visit_date end) over (
                partition by u.project_id, u.visitor_id order by u.visit_date
                rows between unbounded preceding and 1 preceding
            )
        ) as previous_visit_date
    from units as u
)
{%- else -%}
-- Every day of every visitor is here: the previous one is the one before in order.
recency as (
    select
        project_id,
        visit_date,
        visitor_id,
        lag(visit_date) over (partition by project_id, visitor_id order by visit_date)
            as previous_visit_date
    from touched
)
{%- endif %}

select
    e.project_id,
    e.event_date as visit_date,
    e.visitor_id,
    count(*) as events,
    count(*) filter (where e.type = 'page') as pageviews,
    count(*) filter (where e.type = 'track' and e.event_name = any(p.conversion_events)) as conversions,
    r.previous_visit_date,
    {{ build_time() }} as built_at
from {{ ref('int_events') }} as e
join recency as r
    on r.project_id = e.project_id and r.visit_date = e.event_date and r.visitor_id = e.visitor_id
left join {{ ref('stg_projects') }} as p on p.project_id = e.project_id
group by e.project_id, e.event_date, e.visitor_id, r.previous_visit_date
