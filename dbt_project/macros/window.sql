{#
  The run's window as SQL date expressions: [start, end).

  Dagster gives it per run as session settings (lytics.window_start and
  lytics.window_end, sent in PGOPTIONS), not as dbt vars: vars are part of what
  dbt parses, so new values on every run would make it re-parse the whole project
  each time (~2 s here) instead of reusing the parse. When a model runs, the
  setting is read once and written into the SQL as a literal: Postgres plans a
  literal window with real row estimates, while current_setting() in the query
  would leave it guessing (and choosing index scans over a million rows).
  A hand-run `dbt build --vars '{start_date: ..., end_date: ...}'` wins over the
  settings; with neither, a plain `dbt build` rebuilds the last `lookback_days`.
#}
{% macro window_start() -%}
  {%- set day = var('start_date') or run_setting('lytics.window_start') -%}
  {%- if day -%}
    '{{ day }}'::date
  {%- else -%}
    (current_date - {{ var('lookback_days') | int }})
  {%- endif -%}
{%- endmacro %}

{% macro window_end() -%}
  {%- set day = var('end_date') or run_setting('lytics.window_end') -%}
  {%- if day -%}
    '{{ day }}'::date
  {%- else -%}
    (current_date + 1)
  {%- endif -%}
{%- endmacro %}

{#
  A `lytics.*` session setting of this run, or none when it is unset (or while dbt
  parses, when nothing runs). Dagster checks the values it sends (dates, an id).
#}
{% macro run_setting(name) -%}
  {%- if not execute -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set value = run_query("select current_setting('" ~ name ~ "', true)").columns[0].values()[0] -%}
  {{ return(value if value else none) }}
{%- endmacro %}

{# Rows whose day column falls inside the window. #}
{% macro in_window(day_column) -%}
  ({{ day_column }} >= {{ window_start() }} and {{ day_column }} < {{ window_end() }})
{%- endmacro %}

{# Percentage change from `previous` to `current`, null when there is no base. #}
{% macro pct_change(current, previous) -%}
  case when {{ previous }} is null or {{ previous }} = 0 then null
       else round(100.0 * ({{ current }} - {{ previous }}) / {{ previous }}, 2) end
{%- endmacro %}

{# The window's bounds as UTC instants, for comparing timestamptz columns by index. #}
{% macro window_start_ts() -%}
  ({{ window_start() }}::timestamp at time zone 'UTC')
{%- endmacro %}

{% macro window_end_ts() -%}
  ({{ window_end() }}::timestamp at time zone 'UTC')
{%- endmacro %}

{#
  Rows up to the run's high-water mark (the largest raw.events id when the run
  started, session setting lytics.max_event_id, or the var of the same name), so a
  build is an exact snapshot: the reconciliation check compares it with the same
  raw rows, and rows that arrive during the build wait for the next run instead of
  landing in some models and not others. Without either, every row counts.
#}
{% macro upto_watermark(id_column) -%}
  {%- set watermark = var('max_event_id', none) -%}
  {%- if watermark is none -%}
    {%- set watermark = run_setting('lytics.max_event_id') -%}
  {%- endif -%}
  {%- if watermark is not none -%}
    {{ id_column }} <= {{ watermark | int }}
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}
