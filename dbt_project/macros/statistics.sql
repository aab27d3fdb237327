{#
  Post-hook of int_events: fresh planner statistics after a load of many rows (a
  window rebuild; a first build, when the table has never been analyzed), before
  the marts plan their reads of it. Without them a first build over stored events
  planned the sessions as one index probe per visitor: minutes instead of seconds.
  Between those, autovacuum keeps the statistics.
#}
{% macro refresh_statistics() -%}
  {%- if refresh_mode() == 'window' -%}
    analyze {{ this }}
  {%- else -%}
    do $analyze$ begin
      if (select reltuples from pg_class where oid = '{{ this }}'::regclass) < 0 then
        execute 'analyze {{ this }}';
      end if;
    end $analyze$
  {%- endif -%}
{%- endmacro %}
