{#
  Tests of the tables that grow with traffic check only the window being built (an
  hourly build must not scan every event ever stored). dbt renders a test's
  `where` config when it parses, before the run's window is known, so the window
  is written there as a marker that this override of dbt's get_where_subquery
  expands when the test runs, into the same literal bounds the models use:

    where: "in_window(session_date)"   a date column
    where: "in_window_ts(event_at)"    a timestamptz column

  Any other `where` is used as it is, as dbt does.
#}
{% macro get_where_subquery(relation) -%}
  {%- set where = config.get('where', '') -%}
  {%- set marker = modules.re.fullmatch('\\s*in_window(_ts)?\\((\\w+)\\)\\s*', where or '') -%}
  {%- if marker and marker.group(1) -%}
    {%- set where = marker.group(2) ~ ' >= ' ~ window_start_ts() ~ ' and ' ~ marker.group(2) ~ ' < ' ~ window_end_ts() -%}
  {%- elif marker -%}
    {%- set where = in_window(marker.group(2)) -%}
  {%- endif -%}
  {%- if where -%}
    {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
  {%- else -%}
    {%- do return(relation) -%}
  {%- endif -%}
{%- endmacro %}
