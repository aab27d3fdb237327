"""One sync of one data source: account, repositories, then each repository's streams.

Incremental everywhere, resumable, and polite:

- a `/rate_limit` check first; below the reserve nothing else is requested;
- each stream keeps a cursor per (source, repository, stream), committed with
  the rows it covers, so a stopped run resumes where it stopped;
- `since=` streams (issues, commits) re-read from `cursor - lookback`; at the
  end of a run that moved the cursor, the next run's first page is fetched once
  so that its ETag is known and an unchanged next run is conditional throughout;
- newest-first streams (pull requests, releases) stop at the first page that
  reaches below the cursor; stargazers (oldest first, no `since`) resume at
  their last page;
- a primary rate limit (or a secondary one asking for too long a wait) ends the
  sync cleanly with `stopped` and `reset_at` set; a 401 propagates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from lytics.github import store
from lytics.github.client import (
    STAR_MEDIA_TYPE,
    ForbiddenError,
    GitHubClient,
    GitHubError,
    NotFoundError,
    Page,
    RateLimitedError,
    RequestStats,
)
from lytics.github.sources import Source
from lytics.warehouse import github_tables as t

log = logging.getLogger(__name__)

REPOSITORY_STREAMS = (
    "stargazers",
    "issues",
    "pull_requests",
    "releases",
    "commits",
    "traffic",
)
STREAMS = ("accounts", "repositories", *REPOSITORY_STREAMS)
# Traffic answered 403 (no push access): asked again only after this long.
FORBIDDEN_RECHECK = timedelta(days=7)


@dataclass
class StreamResult:
    rows_changed: int = 0
    pages: int = 0
    not_modified: int = 0

    def add(self, page: Page, changed: int = 0) -> None:
        self.pages += 1
        self.not_modified += int(page.not_modified)
        self.rows_changed += changed


@dataclass
class SyncReport:
    source_id: int
    project_id: int
    account: str
    stats: RequestStats
    streams: dict[str, StreamResult] = field(
        default_factory=lambda: {s: StreamResult() for s in STREAMS}
    )
    repositories: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    forbidden: list[str] = field(default_factory=list)
    stopped: str | None = None
    reset_at: datetime | None = None
    detail: str | None = None

    @property
    def complete(self) -> bool:
        return self.stopped is None


@dataclass
class Repo:
    id: int
    full_name: str
    default_branch: str | None


class Sync:
    def __init__(
        self,
        transaction: store.Transaction,
        source: Source,
        client: GitHubClient,
        *,
        streams: Iterable[str] = STREAMS,
        only_repositories: Iterable[str] | None = None,
        reserve: int = 200,
        lookback: timedelta = timedelta(hours=1),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.tx = transaction
        self.source = source
        self.client = client
        self.streams = set(streams)
        self.only = {r.lower() for r in only_repositories} if only_repositories else None
        self.reserve = reserve
        self.lookback = lookback
        self.now = now
        self.report = SyncReport(source.id, source.project_id, source.account_ref, client.stats)

    # --- the run ------------------------------------------------------------------------

    def run(self) -> SyncReport:
        try:
            budget = self.client.rate_limit()
            if budget.remaining <= self.reserve:
                self.report.stopped = "reserve"
                self.report.reset_at = budget.reset_at
                self.report.detail = (
                    f"{budget.remaining} requests left, reserve is {self.reserve}: "
                    f"not started; the limit resets at {budget.reset_at.isoformat()}"
                )
                return self.report
            login = self._account()
            for repo in self._repositories(login):
                for stream in REPOSITORY_STREAMS:
                    if stream in self.streams:
                        getattr(self, f"_{stream}")(repo)
        except RateLimitedError as exc:
            self.report.stopped = f"{exc.kind}_rate_limit"
            self.report.reset_at = exc.reset_at
            self.report.detail = f"{exc}; cursors are saved and the next run resumes from them"
            log.warning("github sync of %s stopped: %s", self.source.account_ref, exc)
        return self.report

    # --- account and repositories --------------------------------------------------------

    def _account(self) -> str:
        page = self.client.get("/user", keep_body=True)
        user = page.data
        changed = 0
        if not page.not_modified:
            with self.tx() as conn:
                changed = store.upsert(
                    conn,
                    t.accounts,
                    [store.account_row(self.source.project_id, self.source.id, user)],
                )
            self.client.remember(page)
        self.report.streams["accounts"].add(page, changed)
        return str(user["login"])

    def _wanted(self, login: str) -> list[str]:
        names = [f for f in self.source.follow if not f.endswith("/*")]
        if self.only is not None:
            return [n for n in self.only if self.source.follows(n)]
        for owner in sorted(self.source.owners()):
            names.extend(self._owned(owner, login))
        seen: dict[str, str] = {}
        for name in names:
            seen.setdefault(name.lower(), name)
        return sorted(seen.values(), key=str.lower)

    def _owned(self, owner: str, login: str) -> list[str]:
        per_page = self.client.options.per_page
        if owner == login.lower():
            # Only this listing includes the token owner's private repositories.
            path, params = "/user/repos", {"affiliation": "owner", "per_page": per_page}
        else:
            path, params = f"/orgs/{owner}/repos", {"type": "all", "per_page": per_page}
        try:
            pages = list(self.client.pages(path, params, keep_body=True))
        except NotFoundError:
            path, params = f"/users/{owner}/repos", {"type": "owner", "per_page": per_page}
            pages = list(self.client.pages(path, params, keep_body=True))
        for page in pages:
            self.client.remember(page)
        return [repo["full_name"] for page in pages for repo in page.data or []]

    def _repositories(self, login: str) -> list[Repo]:
        repos: list[Repo] = []
        for name in self._wanted(login):
            try:
                page = self.client.get(f"/repos/{name}", keep_body=True)
            except NotFoundError as exc:
                self.report.not_found.append(name)
                log.warning("github: %s", exc)
                continue
            row = store.repository_row(
                self.source.project_id, self.source.id, page.data, self.source.expose_private
            )
            with self.tx() as conn:
                changed = store.upsert(conn, t.repositories, [row])
            self.client.remember(page)
            self.report.streams["repositories"].add(page, changed)
            self.report.repositories.append(row["full_name"])
            repos.append(Repo(row["id"], row["full_name"], row["default_branch"]))
        return repos

    # --- streams --------------------------------------------------------------------------

    def _cursor(self, repo: Repo, stream: str) -> dict[str, Any]:
        with self.tx() as conn:
            return store.get_cursor(conn, self.source.id, repo.id, stream)

    def _commit(
        self,
        page: Page,
        stream: str,
        rows: list[dict[str, Any]],
        repo: Repo,
        cursor: Mapping[str, Any] | None,
    ) -> None:
        table = getattr(t, stream)
        with self.tx() as conn:
            changed = sum(store.upsert(conn, table, chunk) for chunk in store.chunks(rows))
            if cursor is not None:
                store.save_cursor(conn, self.source.id, repo.id, stream, cursor)
        self.client.remember(page)
        self.report.streams[stream].add(page, changed)

    def _stargazers(self, repo: Repo) -> None:
        """Oldest first, no `since`: resume at the last page read, then follow Link."""
        cursor = self._cursor(repo, "stargazers")
        start = int(cursor.get("page", 1))
        per_page = self.client.options.per_page
        path = f"/repos/{repo.full_name}/stargazers"
        page = self.client.get(path, {"per_page": per_page, "page": start}, accept=STAR_MEDIA_TYPE)
        probing = False
        while True:
            number = int(parse_qs(urlsplit(page.url).query).get("page", ["1"])[0])
            if page.not_modified:
                self.report.streams["stargazers"].add(page)
                # Unchanged: the start page holds what the cursor says; a probed page was
                # empty last time (a non-empty one would have become the cursor).
                if number == start:
                    count = int(cursor.get("count", 0))
                else:
                    count = 0 if probing else per_page
            elif probing and not page.data:
                self.client.remember(page)  # an empty page past the end: keep its ETag only
                count = 0
            else:
                count = len(page.data)
                rows = [store.stargazer_row(self.source.project_id, repo.id, i) for i in page.data]
                self._commit(page, "stargazers", rows, repo, {"page": number, "count": count})
            if page.next_url:
                probing = False
                page = self.client.get(page.next_url, accept=STAR_MEDIA_TYPE)
            elif count == per_page:
                # GitHub sends no next link after a full last page, yet the next star
                # starts a new page: look there.
                probing = True
                page = self.client.get(
                    path, {"per_page": per_page, "page": number + 1}, accept=STAR_MEDIA_TYPE
                )
            else:
                return

    def _since_stream(
        self,
        repo: Repo,
        *,
        stream: str,
        path: str,
        params: dict[str, Any],
        rows_of: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
        time_of: Callable[[dict[str, Any]], str | None],
        sortable: bool,
    ) -> None:
        """`since=` streams. A sortable one (issues) reads its first sync oldest first, so
        the long initial read saves its cursor page by page and resumes exactly; after
        that it reads newest first: anything new changes the first page (a new item
        after a full last page would not, and a 304 there would hide it)."""
        cursor = self._cursor(repo, stream)
        for _ in range(2):
            latest: str | None = cursor.get("latest")
            ascending = sortable and not latest
            query = dict(params)
            if sortable:
                query["direction"] = "asc" if ascending else "desc"
            if latest:
                since = store.ts(latest)
                assert since is not None
                query["since"] = (since - self.lookback).strftime("%Y-%m-%dT%H:%M:%SZ")
            newest = latest
            for page in self.client.pages(path, query):
                if page.not_modified:
                    self.report.streams[stream].add(page)
                    continue
                items = page.data or []
                times = [x for x in (time_of(i) for i in items) if x]
                newest = max([newest or "", *times]) or None
                # Oldest-first pages move the cursor page by page; newest-first ones
                # only once the whole stream has been read.
                saved = {"latest": newest} if ascending else None
                self._commit(page, stream, rows_of(items), repo, saved)
            if newest == latest:
                return
            cursor = {"latest": newest}
            with self.tx() as conn:
                store.save_cursor(conn, self.source.id, repo.id, stream, cursor)
            # Loop once more: fetch the URL the next run will start with, so its ETag is
            # stored and an unchanged next run costs only conditional requests.

    def _issues(self, repo: Repo) -> None:
        project = self.source.project_id
        self._since_stream(
            repo,
            stream="issues",
            path=f"/repos/{repo.full_name}/issues",
            params={
                "state": "all",
                "sort": "updated",
                "per_page": self.client.options.per_page,
            },
            # The issues endpoint lists pull requests too; they have their own stream.
            rows_of=lambda items: [
                store.issue_row(project, repo.id, i) for i in items if "pull_request" not in i
            ],
            time_of=lambda item: item.get("updated_at"),
            sortable=True,
        )

    def _commits(self, repo: Repo) -> None:
        project = self.source.project_id
        params: dict[str, Any] = {"per_page": self.client.options.per_page}
        if repo.default_branch:
            params["sha"] = repo.default_branch
        try:
            self._since_stream(
                repo,
                stream="commits",
                path=f"/repos/{repo.full_name}/commits",
                params=params,
                rows_of=lambda items: [store.commit_row(project, repo.id, i) for i in items],
                time_of=lambda item: ((item.get("commit") or {}).get("committer") or {}).get(
                    "date"
                ),
                sortable=False,
            )
        except GitHubError as exc:
            if "409" not in str(exc):
                raise
            # 409: an empty repository has no commits yet.
            self.report.streams["commits"].pages += 1

    def _newest_first(
        self,
        repo: Repo,
        *,
        stream: str,
        path: str,
        params: dict[str, Any],
        rows_of: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
        time_of: Callable[[dict[str, Any]], str | None],
    ) -> None:
        latest: str | None = self._cursor(repo, stream).get("latest")
        floor = None
        if latest:
            since = store.ts(latest)
            assert since is not None
            floor = (since - self.lookback).isoformat()
        newest = latest
        for page in self.client.pages(path, params):
            if page.not_modified:
                # The first page is unchanged, so nothing newer exists: done.
                self.report.streams[stream].add(page)
                break
            items = page.data or []
            times = [x for x in (time_of(i) for i in items) if x]
            newest = max([newest or "", *times]) or None
            self._commit(page, stream, rows_of(items), repo, None)
            oldest = min((d for d in (store.ts(x) for x in times) if d), default=None)
            if floor and oldest is not None and oldest.isoformat() < floor:
                break
        if newest != latest:
            with self.tx() as conn:
                store.save_cursor(conn, self.source.id, repo.id, stream, {"latest": newest})

    def _pull_requests(self, repo: Repo) -> None:
        project = self.source.project_id
        self._newest_first(
            repo,
            stream="pull_requests",
            path=f"/repos/{repo.full_name}/pulls",
            params={
                "state": "all",
                "sort": "updated",
                "direction": "desc",
                "per_page": self.client.options.per_page,
            },
            rows_of=lambda items: [store.pull_row(project, repo.id, i) for i in items],
            time_of=lambda item: item.get("updated_at"),
        )

    def _releases(self, repo: Repo) -> None:
        project = self.source.project_id
        self._newest_first(
            repo,
            stream="releases",
            path=f"/repos/{repo.full_name}/releases",
            params={"per_page": self.client.options.per_page},
            rows_of=lambda items: [store.release_row(project, repo.id, i) for i in items],
            time_of=lambda item: item.get("created_at"),
        )

    def _traffic(self, repo: Repo) -> None:
        with self.tx() as conn:
            status = store.cursor_status(conn, self.source.id, repo.id, "traffic")
        if status and status[0] == "forbidden" and self.now() - status[1] < FORBIDDEN_RECHECK:
            self.report.forbidden.append(f"{repo.full_name} traffic (skipped, 403 recorded)")
            return
        for kind in ("views", "clones"):
            try:
                page = self.client.get(f"/repos/{repo.full_name}/traffic/{kind}", {"per": "day"})
            except ForbiddenError as exc:
                # Traffic needs push access: recorded, skipped, never a failed run.
                with self.tx() as conn:
                    store.save_cursor(
                        conn,
                        self.source.id,
                        repo.id,
                        "traffic",
                        {},
                        status="forbidden",
                        detail=str(exc),
                    )
                self.report.forbidden.append(f"{repo.full_name} traffic")
                return
            if page.not_modified:
                self.report.streams["traffic"].add(page)
                continue
            rows = store.traffic_rows(self.source.project_id, repo.id, kind, page.data or {})
            self._commit(page, "traffic", rows, repo, {"fetched": kind})


def snapshot(
    transaction: store.Transaction, project_id: int | None, day: date, observed_at: datetime
) -> int:
    """Copy today's repository counts into the day's snapshot (the last one of the day wins)."""
    query = select(t.repositories)
    if project_id is not None:
        query = query.where(t.repositories.c.project_id == project_id)
    with transaction() as conn:
        rows = [
            store.snapshot_row(int(r.project_id), dict(r._mapping), day, observed_at)
            for r in conn.execute(query)
        ]
        return sum(
            store.upsert(conn, t.repository_snapshots, chunk) for chunk in store.chunks(rows)
        )
