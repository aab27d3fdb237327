"""GitHub read API (seed S0): the connected account and repositories, from the warehouse.

Public repositories only, unless the project opted in to exposing private ones
(`lytics github connect ... --expose-private`): the sync marks each row
`exposed`, and these queries read nothing else. They run as `lytics_reader`
with `lytics.project_id` set, so row-level security keeps a key to its project.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import get
from litestar.params import QueryParameter

from lytics_ingest_api.openapi_docs import SECRET_ERRORS, responses
from lytics_ingest_api.project_access import KeyPrincipal, Reader
from lytics_ingest_api.response_bodies import GithubRepos, GithubUser

ACCOUNTS = """
SELECT login, name, type, html_url, public_repos, followers, synced_at
FROM github.accounts
ORDER BY login
"""

REPOS = """
SELECT r.full_name, r.owner_login AS owner, r.name, r.description, r.html_url, r.language,
       r.default_branch, r.visibility, r.fork, r.archived,
       r.stargazers_count AS stars, r.forks_count AS forks, r.watchers_count AS watchers,
       r.open_issues_count AS open_issues, r.size_kb, r.created_at, r.pushed_at,
       r.synced_at AS counts_synced_at
FROM github.repositories r
WHERE r.exposed
ORDER BY {order}
LIMIT %(limit)s OFFSET %(offset)s
"""

EXPOSED_COUNT = "SELECT count(*) AS total FROM github.repositories WHERE exposed"

ORDERS = {
    "stars": "r.stargazers_count DESC, r.full_name",
    "name": "lower(r.full_name)",
    "pushed": "r.pushed_at DESC NULLS LAST, r.full_name",
}


@get(
    "/v1/github/user",
    operation_id="github_user",
    tags=["github"],
    summary="The GitHub account(s) connected to the project",
    responses=responses(GithubUser, *SECRET_ERRORS),
)
async def github_user(principal: KeyPrincipal, reader: Reader) -> dict[str, Any]:
    accounts = await reader.rows(ACCOUNTS)
    return {
        "project": principal.project_slug,
        "user": accounts[0] if accounts else None,
        "accounts": accounts,
    }


@get(
    "/v1/github/repos",
    operation_id="github_repos",
    tags=["github"],
    summary="Public repositories (private ones only if the project opted in), latest counts",
    responses=responses(GithubRepos, *SECRET_ERRORS),
)
async def github_repos(
    principal: KeyPrincipal,
    reader: Reader,
    *,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 100,
    offset: Annotated[int, QueryParameter(ge=0, le=100_000)] = 0,
    sort: Annotated[Literal["stars", "name", "pushed"], QueryParameter()] = "stars",
) -> dict[str, Any]:
    async with reader.cursor() as cur:
        await cur.execute(REPOS.format(order=ORDERS[sort]), {"limit": limit, "offset": offset})
        repos = await cur.fetchall()
        await cur.execute(EXPOSED_COUNT)
        total = await cur.fetchone()
    return {
        "project": principal.project_slug,
        "total": int(total["total"]) if total else 0,
        "limit": limit,
        "offset": offset,
        "repos": repos,
    }


ROUTES: list[Any] = [github_user, github_repos]
