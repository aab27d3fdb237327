{# The run's window as SQL date literals: [start, end). #}
{% macro window_start() -%}
  {%- if var('start_date') -%}
    '{{ var("start_date") }}'::date
  {%- else -%}
    (current_date - {{ var('lookback_days') | int }})
  {%- endif -%}
{%- endmacro %}

{% macro window_end() -%}
  {%- if var('end_date') -%}
    '{{ var("end_date") }}'::date
  {%- else -%}
    (current_date + 1)
  {%- endif -%}
{%- endmacro %}

{# Rows whose day column falls inside the window. #}
{% macro in_window(day_column) -%}
  ({{ day_column }} >= {{ window_start() }} and {{ day_column }} < {{ window_end() }})
{%- endmacro %}

{#
  Incremental marts replace their window whole: delete it, then insert it
  again, in the model's transaction. Use it as a string, pre_hook="{{ replace_window('day') }}",
  so it renders when the model runs (is_incremental() is always false at parse time). A day that lost all its rows ends up
  empty instead of keeping stale rows, and re-running a window changes nothing.
#}
{% macro replace_window(day_column) -%}
  {%- if is_incremental() -%}
    delete from {{ this }} where {{ in_window(day_column) }}
  {%- else -%}
    select 1
  {%- endif -%}
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
  started), so a build is an exact snapshot: the reconciliation check compares
  it with the same raw rows, and rows that arrive during the build wait for the
  next run instead of landing in some models and not others.
#}
{% macro upto_watermark(id_column) -%}
  {%- if var('max_event_id', none) is not none -%}
    {{ id_column }} <= {{ var('max_event_id') | int }}
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}
