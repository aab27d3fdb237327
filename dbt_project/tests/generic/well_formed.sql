{#
  A unique key and several row rules checked in one scan, where one test per rule
  would scan the table once each (and cost dbt a node each, on every run).

    key:    columns that identify a row; together they must be unique
    rules:  SQL conditions every row must meet. A null outcome passes, as in dbt's
            own tests (write `x is not null` where a null is the failure)

  Each failing row is a key that is duplicated or breaks a rule, with a column per
  rule counting its rows that break it.
#}
{% test well_formed(model, key, rules=[]) %}
select
    {{ key | join(', ') }},
    count(*) as rows_with_key
    {%- for rule in rules %},
    count(*) filter (where ({{ rule }}) is false) as "{{ rule | replace('"', '') | truncate(60, True, '') }}"
    {%- endfor %}
from {{ model }}
group by {{ key | join(', ') }}
having count(*) > 1
    {%- for rule in rules %}
    or bool_or(({{ rule }}) is false)
    {%- endfor %}
{% endtest %}
