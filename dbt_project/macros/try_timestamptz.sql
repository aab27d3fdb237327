{#
  A timestamp parsed from text, or null when the text is not one. Payload
  fields come from outside; one malformed value must not fail a whole build.
  Created by the on-run-start hook in dbt_project.yml.
#}
{% macro create_try_timestamptz() -%}
create schema if not exists {{ target.schema }};
create or replace function {{ target.schema }}.try_timestamptz(value text)
returns timestamptz language plpgsql stable as $fn$
begin
    return value::timestamptz;
exception when others then
    return null;
end
$fn$
{%- endmacro %}

{% macro try_timestamptz(expression) -%}
  {{ target.schema }}.try_timestamptz({{ expression }})
{%- endmacro %}

{# The services read marts through these roles (created by `lytics db upgrade`). #}
{% macro grant_schema_usage() -%}
grant usage on schema {{ target.schema }} to lytics_reader, lytics_pipeline
{%- endmacro %}
