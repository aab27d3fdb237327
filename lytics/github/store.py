"""Writing GitHub data: upserts keyed by GitHub ids, cursors and ETags.

An upsert changes a row (and its `synced_at`) only when GitHub's JSON for it
changed, so re-reading a page after a lookback or a resumed run writes nothing
and the marts sensor sees only real changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Table, func, select
from sqlalchemy.dialects.postgresql import insert

from lytics.github.client import CachedResponse
from lytics.warehouse import github_tables as t

Transaction = Callable[[], AbstractContextManager[Connection]]


def ts(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def upsert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert or update by primary key; returns how many rows were new or changed."""
    if not rows:
        return 0
    statement = insert(table).values(list(rows))
    keys = [c.name for c in table.primary_key.columns]
    changing = [c for c in rows[0] if c not in keys]
    compare = "raw" if "raw" in table.c else None
    updates: dict[str, Any] = {c: statement.excluded[c] for c in changing}
    updates["synced_at"] = func.now()
    if compare:
        where = table.c[compare].is_distinct_from(statement.excluded[compare])
    else:
        where = None
        for column in changing:
            clause = table.c[column].is_distinct_from(statement.excluded[column])
            where = clause if where is None else where | clause
    statement = statement.on_conflict_do_update(index_elements=keys, set_=updates, where=where)
    return len(conn.execute(statement.returning(table.c[keys[0]])).all())


# --- rows from GitHub's JSON --------------------------------------------------------------


def account_row(project_id: int, source_id: int, user: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "id": user["id"],
        "source_id": source_id,
        "login": user["login"],
        "name": user.get("name"),
        "type": user.get("type"),
        "html_url": user.get("html_url"),
        "public_repos": user.get("public_repos"),
        "followers": user.get("followers"),
        "raw": dict(user),
    }


def repository_row(
    project_id: int, source_id: int, repo: Mapping[str, Any], expose_private: bool
) -> dict[str, Any]:
    private = bool(repo.get("private", False))
    return {
        "project_id": project_id,
        "id": repo["id"],
        "source_id": source_id,
        "full_name": repo["full_name"],
        "owner_login": repo["owner"]["login"],
        "name": repo["name"],
        "private": private,
        "visibility": repo.get("visibility") or ("private" if private else "public"),
        "exposed": (not private) or expose_private,
        "fork": bool(repo.get("fork", False)),
        "archived": bool(repo.get("archived", False)),
        "description": repo.get("description"),
        "html_url": repo.get("html_url"),
        "language": repo.get("language"),
        "default_branch": repo.get("default_branch"),
        "stargazers_count": int(repo.get("stargazers_count") or 0),
        "forks_count": int(repo.get("forks_count") or 0),
        "watchers_count": repo.get("subscribers_count"),
        "open_issues_count": int(repo.get("open_issues_count") or 0),
        "size_kb": int(repo.get("size") or 0),
        "created_at": ts(repo.get("created_at")),
        "pushed_at": ts(repo.get("pushed_at")),
        "updated_at": ts(repo.get("updated_at")),
        "raw": dict(repo),
    }


def stargazer_row(project_id: int, repo_id: int, item: Mapping[str, Any]) -> dict[str, Any]:
    user = item["user"]
    return {
        "project_id": project_id,
        "repository_id": repo_id,
        "user_id": user["id"],
        "login": user["login"],
        "starred_at": ts(item["starred_at"]),
        "raw": dict(item),
    }


def issue_row(project_id: int, repo_id: int, item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "id": item["id"],
        "repository_id": repo_id,
        "number": item["number"],
        "title": item.get("title") or "",
        "state": item["state"],
        "user_login": (item.get("user") or {}).get("login"),
        "comments": item.get("comments"),
        "created_at": ts(item["created_at"]),
        "updated_at": ts(item["updated_at"]),
        "closed_at": ts(item.get("closed_at")),
        "raw": dict(item),
    }


def pull_row(project_id: int, repo_id: int, item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "id": item["id"],
        "repository_id": repo_id,
        "number": item["number"],
        "title": item.get("title") or "",
        "state": item["state"],
        "draft": bool(item.get("draft", False)),
        "merged": item.get("merged_at") is not None,
        "user_login": (item.get("user") or {}).get("login"),
        "created_at": ts(item["created_at"]),
        "updated_at": ts(item["updated_at"]),
        "closed_at": ts(item.get("closed_at")),
        "merged_at": ts(item.get("merged_at")),
        "raw": dict(item),
    }


def release_row(project_id: int, repo_id: int, item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "id": item["id"],
        "repository_id": repo_id,
        "tag_name": item["tag_name"],
        "name": item.get("name"),
        "draft": bool(item.get("draft", False)),
        "prerelease": bool(item.get("prerelease", False)),
        "created_at": ts(item["created_at"]),
        "published_at": ts(item.get("published_at")),
        "raw": dict(item),
    }


def commit_row(project_id: int, repo_id: int, item: Mapping[str, Any]) -> dict[str, Any]:
    commit = item.get("commit") or {}
    author = commit.get("author") or {}
    committer = commit.get("committer") or {}
    return {
        "project_id": project_id,
        "repository_id": repo_id,
        "sha": item["sha"],
        "author_login": (item.get("author") or {}).get("login"),
        "author_name": author.get("name"),
        "authored_at": ts(author.get("date")),
        "committed_at": ts(committer.get("date") or author.get("date")),
        "message": commit.get("message") or "",
        "raw": dict(item),
    }


def traffic_rows(
    project_id: int, repo_id: int, kind: str, body: Mapping[str, Any]
) -> list[dict[str, Any]]:
    return [
        {
            "project_id": project_id,
            "repository_id": repo_id,
            "kind": kind,
            "day": date.fromisoformat(str(item["timestamp"])[:10]),
            "count": int(item.get("count") or 0),
            "uniques": int(item.get("uniques") or 0),
        }
        for item in body.get(kind, [])
    ]


def snapshot_row(
    project_id: int, repo: Mapping[str, Any], day: date, observed_at: datetime
) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "repository_id": repo["id"],
        "snapshot_date": day,
        "stargazers_count": repo["stargazers_count"],
        "forks_count": repo["forks_count"],
        "watchers_count": repo["watchers_count"],
        "open_issues_count": repo["open_issues_count"],
        "size_kb": repo["size_kb"],
        "default_branch": repo["default_branch"],
        "observed_at": observed_at,
    }


# --- cursors ------------------------------------------------------------------------------


def get_cursor(conn: Connection, source_id: int, repo_id: int, stream: str) -> dict[str, Any]:
    value = conn.execute(
        select(t.sync_cursors.c.position).where(
            t.sync_cursors.c.source_id == source_id,
            t.sync_cursors.c.repository_id == repo_id,
            t.sync_cursors.c.stream == stream,
        )
    ).scalar_one_or_none()
    return dict(value) if value else {}


def cursor_status(
    conn: Connection, source_id: int, repo_id: int, stream: str
) -> tuple[str, datetime] | None:
    row = conn.execute(
        select(t.sync_cursors.c.status, t.sync_cursors.c.updated_at).where(
            t.sync_cursors.c.source_id == source_id,
            t.sync_cursors.c.repository_id == repo_id,
            t.sync_cursors.c.stream == stream,
        )
    ).one_or_none()
    return (str(row.status), row.updated_at) if row else None


def save_cursor(
    conn: Connection,
    source_id: int,
    repo_id: int,
    stream: str,
    position: Mapping[str, Any],
    *,
    status: str = "ok",
    detail: str | None = None,
) -> None:
    values = {"position": dict(position), "status": status, "detail": detail}
    conn.execute(
        insert(t.sync_cursors)
        .values(source_id=source_id, repository_id=repo_id, stream=stream, **values)
        .on_conflict_do_update(
            index_elements=["source_id", "repository_id", "stream"],
            set_={**values, "updated_at": func.now()},
        )
    )


# --- ETags --------------------------------------------------------------------------------


class DatabaseEtags:
    """ETags (and some bodies) per source and URL in github.http_cache."""

    def __init__(self, transaction: Transaction, source_id: int) -> None:
        self._transaction = transaction
        self._source_id = source_id

    def get(self, url: str) -> CachedResponse | None:
        with self._transaction() as conn:
            row = conn.execute(
                select(t.http_cache.c.etag, t.http_cache.c.body, t.http_cache.c.next_url).where(
                    t.http_cache.c.source_id == self._source_id, t.http_cache.c.url == url
                )
            ).one_or_none()
        return CachedResponse(row.etag, row.body, row.next_url) if row else None

    def put(self, url: str, cached: CachedResponse) -> None:
        values = {"etag": cached.etag, "body": cached.body, "next_url": cached.next_url}
        with self._transaction() as conn:
            conn.execute(
                insert(t.http_cache)
                .values(source_id=self._source_id, url=url, **values)
                .on_conflict_do_update(
                    index_elements=["source_id", "url"],
                    set_={**values, "updated_at": func.now()},
                )
            )


def chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
