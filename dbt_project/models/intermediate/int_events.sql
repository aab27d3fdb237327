{{ config(
    materialized='incremental',
    incremental_strategy='append',
    meta={'day_column': 'event_date', 'raw_time_column': 'event_at'},
    indexes=[
        {'columns': ['event_id'], 'unique': true},
        {'columns': ['loaded_at']},
        {'columns': ['received_at']},
        {'columns': ['project_id', 'event_date', 'visitor_id']},
        {'columns': ['project_id', 'event_date', 'session_id']},
    ],
    post_hook=[
        "create index if not exists {{ this.name }}_pageviews on {{ this }}"
        " (project_id, event_date, path, visitor_id) where type = 'page'",
        "{{ refresh_statistics() }}",
    ],
) }}
{#- The partial index serves daily_pages: a path's pageviews and visitors read from the
    index alone (dbt's `indexes` config has no `where`). -#}
-- Every raw event, narrowed to what the marts read (no payload) and loaded once:
-- the only model that reads raw.events. `loaded_at` is the run that loaded the row;
-- the marts recompute what the rows loaded since their own last build touch, found
-- through its index, and read events of a visitor, session or path by the others.
--
-- New rows are found by arrival (raw.events' BRIN index on received_at), not by id:
-- ids are taken before commit, so a row can become visible after a larger one. Rows
-- received up to `late_commit_minutes` before the newest loaded one are looked at
-- again and loaded if they are not here yet.
--
-- A window rebuild (pre-hook: delete the window) reloads the window's days through
-- raw.events' (project_id, timestamp) index, one project at a time.
select
    e.event_id,
    e.project_id,
    e.event_date,
    e.event_at,
    e.received_at,
    e.visitor_id,
    e.session_id,
    e.type,
    e.event_name,
    e.path,
    e.referrer,
    e.utm_source,
    {{ build_time() }} as loaded_at
from {{ ref('stg_events') }} as e
-- Events of projects that no longer exist stay in raw only (tested on daily_visitors).
where e.project_id in (select project_id from {{ ref('stg_projects') }})
-- Days before a project's retention horizon are closed: the rows loaded then stay, and
-- an event for such a day arriving now is left for retention to remove.
and not {{ before_horizon('e.project_id', 'e.event_at') }}
{% if is_incremental() %}
and (
    e.received_at >= {{ newest('received_at') }} - interval '{{ var("late_commit_minutes") | int }} minutes'
    and not exists (select 1 from {{ this }} as loaded where loaded.event_id = e.event_id)
    {%- if refresh_mode() == 'window' %}
    and not (e.event_at >= {{ window_start_ts() }} and e.event_at < {{ window_end_ts() }})
    {%- endif %}
{%- if refresh_mode() == 'window' %}
    or e.event_at >= {{ window_start_ts() }} and e.event_at < {{ window_end_ts() }}
{%- endif %}
)
{% endif %}
