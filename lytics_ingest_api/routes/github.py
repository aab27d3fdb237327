"""GitHub read API (seed S0): the connected account and repositories, from the warehouse.

Public repositories only, unless the project opted in to exposing private ones
(`lytics github connect ... --expose-private`): the sync marks each row
`exposed`, and these queries read nothing else. They run as `lytics_reader`
with `lytics.project_id` set, so row-level security keeps a key to its project.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Request, get
from litestar.params import QueryParameter
from psycopg.rows import dict_row

from lytics_ingest_api.admission import admit
from lytics_ingest_api.auth import require_secret_key
from lytics_ingest_api.database import project_transaction

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

EXPOSED_COUNT = "SELECT count(*) FROM github.repositories WHERE exposed"

ORDERS = {
    "stars": "r.stargazers_count DESC, r.full_name",
    "name": "lower(r.full_name)",
    "pushed": "r.pushed_at DESC NULLS LAST, r.full_name",
}


async def _scoped(request: Request[Any, Any, Any]) -> tuple[Any, int, str]:
    principal = await require_secret_key(request)
    admit(request, principal)
    return request.app.state.reader_pool, principal.project_id, principal.project_slug


@get(
    "/v1/github/user",
    operation_id="github_user",
    tags=["github"],
    summary="The GitHub account(s) connected to the project",
)
async def github_user(request: Request[Any, Any, Any]) -> dict[str, Any]:
    pool, project_id, slug = await _scoped(request)
    async with project_transaction(pool, project_id) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(ACCOUNTS)
        accounts = await cur.fetchall()
    return {"project": slug, "user": accounts[0] if accounts else None, "accounts": accounts}


@get(
    "/v1/github/repos",
    operation_id="github_repos",
    tags=["github"],
    summary="Public repositories (private ones only if the project opted in), latest counts",
)
async def github_repos(
    request: Request[Any, Any, Any],
    *,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 100,
    offset: Annotated[int, QueryParameter(ge=0, le=100_000)] = 0,
    sort: Annotated[Literal["stars", "name", "pushed"], QueryParameter()] = "stars",
) -> dict[str, Any]:
    pool, project_id, slug = await _scoped(request)
    async with project_transaction(pool, project_id) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(REPOS.format(order=ORDERS[sort]), {"limit": limit, "offset": offset})
        repos = await cur.fetchall()
        total = await (await conn.execute(EXPOSED_COUNT)).fetchone()
    return {
        "project": slug,
        "total": int(total[0]) if total else 0,
        "limit": limit,
        "offset": offset,
        "repos": repos,
    }


ROUTES: list[Any] = [github_user, github_repos]
