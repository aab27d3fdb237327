{#
  What a run rebuilds. Two modes, chosen by the `refresh` var:

  - refresh: window (the default; backfills, the hourly rebuild, a hand-run `dbt build`)
    rebuilds every row of the days [start_date, end_date) from raw. Dagster passes
    its partition window as --vars; without them a run takes the last
    `lookback_days` days.
  - refresh: new_rows (the raw-data sensor) folds in what arrived since each model's
    last build and recomputes only the sessions, visitors, paths and days those rows
    touch. It needs no dates, so its vars never change and dbt reuses the parse.

  Either way a model also picks up whatever arrived since its own last build, so a
  failed or skipped run leaves nothing behind for the next one. A model built for
  the first time (or with --full-refresh) builds from every row.
  docs/metrics.md, "How a refresh works", has the design and its limits.
#}

{% macro refresh_mode() -%}
  {%- set mode = var('refresh') -%}
  {%- if mode not in ('window', 'new_rows') -%}
    {{ exceptions.raise_compiler_error("var refresh must be 'window' or 'new_rows', not " ~ mode) }}
  {%- endif -%}
  {{ return(mode) }}
{%- endmacro %}

{% macro window_start() -%}
  {%- if var('start_date') -%}
    '{{ var('start_date') }}'::date
  {%- else -%}
    (current_date - {{ var('lookback_days') | int }})
  {%- endif -%}
{%- endmacro %}

{% macro window_end() -%}
  {%- if var('end_date') -%}
    '{{ var('end_date') }}'::date
  {%- else -%}
    (current_date + 1)
  {%- endif -%}
{%- endmacro %}

{# Rows whose day column falls inside the window. #}
{% macro in_window(day_column) -%}
  ({{ day_column }} >= {{ window_start() }} and {{ day_column }} < {{ window_end() }})
{%- endmacro %}

{# The window's bounds as UTC instants, for comparing timestamptz columns by index. #}
{% macro window_start_ts() -%}
  ({{ window_start() }}::timestamp at time zone 'UTC')
{%- endmacro %}

{% macro window_end_ts() -%}
  ({{ window_end() }}::timestamp at time zone 'UTC')
{%- endmacro %}

{#
  What each model writes into `built_at` (int_events: `loaded_at`): the start of its
  own transaction, by the database's clock, the clock raw rows' `received_at` is
  compared with. Models build one after another along the graph, so a model's rows
  are always newer than those of the models it reads.
#}
{% macro build_time() -%}
  now()
{%- endmacro %}

{#
  The newest value of `column` in this model's table, as a literal: looked up when
  the model runs, so Postgres plans "rows newer than this" with the real value and
  reads the few new rows by index (a subquery there would leave it guessing a third
  of the table, and scanning all of it). -infinity when the table is being created,
  so a first build takes everything, and when the table predates the column (an
  upgrade: the build adds it, and recomputes what it is asked to).
#}
{% macro newest(column) -%}
  {%- set value = none -%}
  {%- if execute and is_incremental() and column in (adapter.get_columns_in_relation(this) | map(attribute='name')) -%}
    {%- set value = run_query('select max(' ~ adapter.quote(column) ~ ')::text from ' ~ this).columns[0].values()[0] -%}
  {%- endif -%}
  {%- if value is none -%}
    '-infinity'::timestamptz
  {%- else -%}
    '{{ value }}'::timestamptz
  {%- endif -%}
{%- endmacro %}

{# When this model was last built (the newest `built_at` it holds). #}
{% macro last_build() -%}
  {{ newest('built_at') }}
{%- endmacro %}

{#
  The int_events rows whose units this build recomputes: those loaded since the
  model's last build, and in window mode every row of the window as well.
#}
{% macro rows_to_recompute(loaded_at, day_column) -%}
  {%- if not is_incremental() -%}
    true
  {%- elif refresh_mode() == 'window' -%}
    ({{ loaded_at }} > {{ last_build() }} or {{ in_window(day_column) }})
  {%- else -%}
    {{ loaded_at }} > {{ last_build() }}
  {%- endif -%}
{%- endmacro %}

{#
  Raw rows (metrics, webhooks) whose days this build recomputes: those received
  since the model's last build, less `late_commit_minutes` for rows whose commit
  trailed their receipt, and in window mode every day of the window.
#}
{% macro raw_rows_to_recompute(received_at, day_column) -%}
  {%- set since = last_build() ~ " - interval '" ~ (var('late_commit_minutes') | int) ~ " minutes'" -%}
  {%- if not is_incremental() -%}
    true
  {%- elif refresh_mode() == 'window' -%}
    ({{ received_at }} > {{ since }} or {{ in_window(day_column) }})
  {%- else -%}
    {{ received_at }} > {{ since }}
  {%- endif -%}
{%- endmacro %}

{#
  True for a row of a project from before its retention horizon: retention
  (lytics.retention) removed that project's raw events before `retained_from`, so
  those rows can no longer be rebuilt from raw and are kept as they are.
#}
{% macro before_horizon(project_column, time_column) -%}
  exists (select 1 from {{ source('app', 'raw_horizons') }} as horizon
          where horizon.project_id = {{ project_column }}
            and {{ time_column }} < horizon.retained_from)
{%- endmacro %}

{#
  Pre-hook of every incremental model: a window rebuild first deletes the window's
  rows (in the model's transaction), so a day that lost rows in raw loses them here
  too; the model then inserts the window again. The day column is `meta.day_column`.
  A model loaded straight from raw (`meta.raw_time_column`) keeps its rows from
  before the retention horizon: raw no longer has them to load again.
#}
{% macro delete_window() -%}
  {%- if execute and is_incremental() and refresh_mode() == 'window' -%}
    {%- set meta = config.get('meta', {}) -%}
    delete from {{ this }} as target where {{ in_window(meta.get('day_column')) }}
    {%- if meta.get('raw_time_column') %}
      and not {{ before_horizon('target.project_id', 'target.' ~ meta.get('raw_time_column')) }}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}
