select
    project_id,
    id as repository_id,
    full_name,
    private,
    exposed,
    (created_at at time zone 'UTC')::date as created_date
from {{ source('github', 'repositories') }}
