{# An invariant between two columns of the same row, e.g. unique visitors <= events. #}
{% test not_greater_than(model, column_name, other) %}
select * from {{ model }} where {{ column_name }} > {{ other }}
{% endtest %}
