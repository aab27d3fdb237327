-- One row per project with the events that count as its conversions.
select
    p.id as project_id,
    p.slug as project_slug,
    coalesce(
        (select array_agg(value order by value) from jsonb_array_elements_text(p.settings -> 'conversion_events')),
        array[{% for name in var('default_conversion_events') %}'{{ name }}'{{ "," if not loop.last }}{% endfor %}]::text[]
    ) as conversion_events
from {{ source('app', 'projects') }} as p
