{#
  The marts' materialization: replace the run's window of days in place.

  One transaction: delete the window's rows (`meta.day_column` inside the window),
  insert the model's rows, apply grants. dbt's own incremental materialization
  would first write the whole result to a temp table, compare its columns with the
  target's in four catalog queries, and then copy it into the target: for the
  session mart that is a second write of every row of the day, on the build's
  critical path, and for every mart several round trips on every run.

  The first run (or --full-refresh) creates the table and its indexes. A model
  that gains a column gets it added to the table (dbt's on_schema_change
  'append_new_columns'); a dropped column stays and is left null.
#}
{% materialization window_replace, default -%}
  {%- set existing = load_cached_relation(this) -%}
  {%- set target = this.incorporate(type='table') -%}
  {%- set day_column = config.get('meta', {}).get('day_column') -%}
  {%- if not day_column -%}
    {{ exceptions.raise_compiler_error("window_replace needs meta.day_column on " ~ this) }}
  {%- endif -%}
  {%- set rebuild = existing is none or not existing.is_table or should_full_refresh() -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {%- if rebuild -%}
    {%- if existing is not none -%}
      {% do adapter.drop_relation(existing) %}
    {%- endif -%}
    {% call statement('main') -%}
      {{ get_create_table_as_sql(False, target, sql) }}
    {%- endcall %}
    {% do create_indexes(target) %}
  {%- else -%}
    {%- set model_columns = get_column_schema_from_query(sql) -%}
    {%- set table_columns = adapter.get_columns_in_relation(target) -%}
    {%- if diff_columns(model_columns, table_columns) -%}
      {#- Rare (the model gained a column): take the new columns' types from the
          catalog, via an empty temp table of the model's shape. -#}
      {%- set shape = make_temp_relation(target) -%}
      {% call statement('model_shape') -%}
        create temporary table {{ shape }} on commit drop as
        select * from (
          {{ sql }}
        ) as model_rows limit 0
      {%- endcall %}
      {%- set new_columns = diff_columns(adapter.get_columns_in_relation(shape), table_columns) -%}
      {% do alter_relation_add_remove_columns(target, new_columns, none) %}
    {%- endif -%}
    {%- set names = model_columns | map(attribute='quoted') | join(', ') -%}
    {% call statement('delete_window') -%}
      delete from {{ target }} where {{ in_window(day_column) }}
    {%- endcall %}
    {% call statement('main') -%}
      insert into {{ target }} ({{ names }})
      select {{ names }} from (
        {{ sql }}
      ) as model_rows
    {%- endcall %}
  {%- endif -%}

  {% do apply_grants(target, config.get('grants'), should_revoke=should_revoke(existing, rebuild)) %}
  {% do persist_docs(target, model) %}
  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% do adapter.commit() %}
  {{ run_hooks(post_hooks, inside_transaction=False) }}
  {{ return({'relations': [target]}) }}
{%- endmaterialization %}
