{{ config(
    unique_key=['project_id', 'repository_id', 'metric_date'],
    meta={'day_column': 'metric_date'},
) }}
{#
  One row per followed repository and UTC day of the window (zeros included, from the
  repository's creation on): stars gained, issues opened/closed, PRs opened/merged,
  releases, and the day's snapshot counts (stars, forks, forks gained since the previous
  day's snapshot) where a snapshot was taken.
#}
with days as (
    select d::date as metric_date
    from generate_series({{ window_start() }}::timestamp, ({{ window_end() }} - 1)::timestamp,
                         interval '1 day') as d
),

grid as (
    select r.project_id, r.repository_id, r.full_name, r.exposed, days.metric_date
    from {{ ref('stg_github_repositories') }} as r
    cross join days
    where r.created_date is null or days.metric_date >= r.created_date
),

activity as (
    select
        project_id,
        repository_id,
        (happened_at at time zone 'UTC')::date as metric_date,
        count(*) filter (where activity = 'star') as stars_gained,
        count(*) filter (where activity = 'issue_opened') as issues_opened,
        count(*) filter (where activity = 'issue_closed') as issues_closed,
        count(*) filter (where activity = 'pr_opened') as prs_opened,
        count(*) filter (where activity = 'pr_merged') as prs_merged,
        count(*) filter (where activity = 'release') as releases
    from {{ ref('stg_github_activity') }}
    where happened_at >= {{ window_start_ts() }} and happened_at < {{ window_end_ts() }}
    group by 1, 2, 3
),

snapshots as (
    select
        project_id,
        repository_id,
        snapshot_date as metric_date,
        stargazers_count,
        forks_count,
        forks_count - lag(forks_count) over (
            partition by project_id, repository_id order by snapshot_date
        ) as forks_gained,
        lag(snapshot_date) over (
            partition by project_id, repository_id order by snapshot_date
        ) as previous_date
    from {{ source('github', 'repository_snapshots') }}
    where snapshot_date >= {{ window_start() }} - 1 and snapshot_date < {{ window_end() }}
)

select
    grid.project_id,
    grid.repository_id,
    grid.full_name,
    grid.exposed,
    grid.metric_date,
    coalesce(activity.stars_gained, 0) as stars_gained,
    coalesce(activity.issues_opened, 0) as issues_opened,
    coalesce(activity.issues_closed, 0) as issues_closed,
    coalesce(activity.prs_opened, 0) as prs_opened,
    coalesce(activity.prs_merged, 0) as prs_merged,
    coalesce(activity.releases, 0) as releases,
    snapshots.stargazers_count,
    snapshots.forks_count,
    -- Only against the day before: a gap in snapshots gives no daily figure.
    case when snapshots.previous_date = grid.metric_date - 1 then snapshots.forks_gained end
        as forks_gained
from grid
left join activity using (project_id, repository_id, metric_date)
left join snapshots using (project_id, repository_id, metric_date)
