{# One row per dated thing that happens to a repository, in UTC days. #}
select project_id, repository_id, 'star' as activity, starred_at as happened_at
from {{ source('github', 'stargazers') }}
union all
select project_id, repository_id, 'issue_opened', created_at
from {{ source('github', 'issues') }}
union all
select project_id, repository_id, 'issue_closed', closed_at
from {{ source('github', 'issues') }}
where closed_at is not null
union all
select project_id, repository_id, 'pr_opened', created_at
from {{ source('github', 'pull_requests') }}
union all
select project_id, repository_id, 'pr_merged', merged_at
from {{ source('github', 'pull_requests') }}
where merged_at is not null
union all
select project_id, repository_id, 'release', published_at
from {{ source('github', 'releases') }}
where published_at is not null and not draft
