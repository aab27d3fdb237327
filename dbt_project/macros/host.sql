{# The host of a URL, lower-cased and without "www.", or null. #}
{% macro url_host(url) -%}
  nullif(lower(regexp_replace(substring({{ url }} from '^[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#:]+)'), '^www\.', '')), '')
{%- endmacro %}
