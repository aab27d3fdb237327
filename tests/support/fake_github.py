"""A small GitHub REST API over real HTTP, for the extraction tests.

It speaks the subset Lytics uses, the way GitHub does: token auth (401 "Bad
credentials"), `Link` pagination with `per_page`/`page`, weak ETags and 304s
(which cost no quota), `X-RateLimit-*` headers and a primary limit (403 "API rate
limit exceeded" once the budget is spent), `/rate_limit` (free), `since=` on
issues and commits, newest-first pull requests and releases, stargazers with
`starred_at` under `application/vnd.github.star+json`, traffic that answers 403
without push access. It is served under `/api/v3`, as GitHub Enterprise is, so
the client is pointed at it through its base URL only.

Failures are injected per path (`fail(...)`): secondary limits with Retry-After,
5xx, 401, anything. Every request is logged with its conditional header and status.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

PREFIX = "/api/v3"
TOKEN = "ghp_fake_token_for_tests"
STAR_JSON = "application/vnd.github.star+json"
BASE_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Logged:
    path: str
    query: dict[str, str]
    if_none_match: str | None
    status: int
    at: float


@dataclass
class Rule:
    pattern: re.Pattern[str]
    status: int
    times: int
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeRepo:
    id: int
    owner: str
    name: str
    private: bool = False
    default_branch: str = "main"
    forks: int = 0
    watchers: int = 1
    size: int = 100
    push_access: bool = True
    created_at: datetime = BASE_TIME - timedelta(days=365)
    stars: list[dict[str, Any]] = field(default_factory=list)
    issues: list[dict[str, Any]] = field(default_factory=list)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)
    commits: list[dict[str, Any]] = field(default_factory=list)
    views: list[dict[str, Any]] = field(default_factory=list)
    clones: list[dict[str, Any]] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def as_json(self, detail: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "full_name": self.full_name,
            "owner": {"login": self.owner, "id": 1 if self.owner == "octo" else 2},
            "private": self.private,
            "visibility": "private" if self.private else "public",
            "fork": False,
            "archived": False,
            "description": f"{self.name} description",
            "html_url": f"https://github.example/{self.full_name}",
            "language": "Python",
            "default_branch": self.default_branch,
            "stargazers_count": len(self.stars),
            "watchers_count": len(self.stars),
            "forks_count": self.forks,
            "open_issues_count": sum(1 for i in self.issues if i["state"] == "open"),
            "size": self.size,
            "created_at": iso(self.created_at),
            "updated_at": iso(BASE_TIME),
            "pushed_at": iso(BASE_TIME),
        }
        if detail:
            body["subscribers_count"] = self.watchers
        return body

    # --- fixture builders -------------------------------------------------------------

    def add_stars(self, count: int, start: datetime = BASE_TIME - timedelta(days=10)) -> None:
        first = len(self.stars)
        for k in range(first, first + count):
            user = {"login": f"fan{self.id}-{k}", "id": self.id * 10_000 + k}
            self.stars.append({"starred_at": iso(start + timedelta(hours=7 * k)), "user": user})

    def add_issue(
        self,
        number: int,
        created: datetime,
        *,
        closed: datetime | None = None,
        pull: bool = False,
        merged: datetime | None = None,
    ) -> None:
        updated = max(x for x in (created, closed, merged) if x is not None)
        item: dict[str, Any] = {
            "id": self.id * 100_000 + number,
            "number": number,
            "title": f"{'PR' if pull else 'Issue'} {number}",
            "state": "closed" if closed else "open",
            "user": {"login": "someone"},
            "comments": 0,
            "created_at": iso(created),
            "updated_at": iso(updated),
            "closed_at": iso(closed) if closed else None,
        }
        if pull:
            item["pull_request"] = {"url": f"/pulls/{number}"}
            self.pulls.append(
                {
                    **{k: v for k, v in item.items() if k != "pull_request"},
                    "id": item["id"] + 50_000,
                    "draft": False,
                    "merged_at": iso(merged) if merged else None,
                }
            )
        self.issues.append(item)

    def add_release(self, k: int, created: datetime) -> None:
        self.releases.append(
            {
                "id": self.id * 1000 + k,
                "tag_name": f"v{k}.0",
                "name": f"Release {k}",
                "draft": False,
                "prerelease": False,
                "created_at": iso(created),
                "published_at": iso(created + timedelta(minutes=5)),
            }
        )

    def add_commit(self, k: int, when: datetime) -> None:
        sha = hashlib.sha1(f"{self.id}-{k}".encode()).hexdigest()
        who = {"name": "Dev", "email": "dev@example.com", "date": iso(when)}
        self.commits.append(
            {
                "sha": sha,
                "author": {"login": "dev"},
                "commit": {"message": f"commit {k}", "author": who, "committer": who},
            }
        )


class FakeGitHub:
    """The server's state, and the ASGI application itself."""

    def __init__(self, *, login: str = "octo", limit: int = 5000) -> None:
        self.lock = threading.Lock()
        self.login = login
        self.token = TOKEN
        self.limit = limit
        self.remaining = limit
        self.reset = int(time.time()) + 3600
        self.repos: dict[str, FakeRepo] = {}
        self.orgs: set[str] = set()
        self.rules: list[Rule] = []
        self.log: list[Logged] = []

    # --- control from tests ---------------------------------------------------------------

    def add_repo(self, repo: FakeRepo) -> FakeRepo:
        self.repos[repo.full_name.lower()] = repo
        return repo

    def fail(
        self,
        pattern: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        message: str = "failure",
    ) -> None:
        with self.lock:
            self.rules.append(
                Rule(re.compile(pattern), status, times, headers or {}, {"message": message})
            )

    def set_budget(self, remaining: int) -> None:
        with self.lock:
            self.remaining = remaining

    def requests(self, since: int = 0) -> list[Logged]:
        with self.lock:
            return list(self.log[since:])

    # --- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = dict(parse_qsl(scope["query_string"].decode()))
        status, out_headers, body = self.handle(scope["path"], query, headers)
        raw = json.dumps(body).encode() if body is not None else b""
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in out_headers.items()]
                + [(b"content-type", b"application/json; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": raw})

    def handle(
        self, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            status, out, body = self._handle(path, query, headers)
            self.log.append(
                Logged(
                    path.removeprefix(PREFIX),
                    query,
                    headers.get("if-none-match"),
                    status,
                    time.monotonic(),
                )
            )
            return status, out, body

    def _rate_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset),
            "x-ratelimit-used": str(self.limit - self.remaining),
            "x-ratelimit-resource": "core",
        }

    def _handle(  # noqa: PLR0911 - one answer per GitHub rule
        self, path: str, query: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        if not path.startswith(PREFIX + "/"):
            return 404, {}, {"message": "Not Found"}
        route = path[len(PREFIX) :]
        auth = headers.get("authorization", "")
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            return (
                401,
                {},
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            )
        for rule in self.rules:
            if rule.times > 0 and rule.pattern.search(route):
                rule.times -= 1
                if rule.status not in (304,):
                    return rule.status, {**self._rate_headers(), **rule.headers}, rule.body
        if route == "/rate_limit":
            core = {
                "limit": self.limit,
                "remaining": self.remaining,
                "reset": self.reset,
                "used": self.limit - self.remaining,
            }
            return 200, self._rate_headers(), {"resources": {"core": core}, "rate": core}
        found = self._route(route, query, headers.get("accept", ""))
        if found is None:
            status, body, link = 404, {"message": "Not Found"}, None
        else:
            status, body, link = found
        etag = 'W/"' + hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest() + '"'
        if status == 200 and headers.get("if-none-match") == etag:
            # Conditional hit: no body, and no quota spent.
            return 304, {**self._rate_headers(), "etag": etag}, None
        if self.remaining <= 0:
            return (
                403,
                self._rate_headers(),
                {
                    "message": "API rate limit exceeded for user ID 1.",
                    "documentation_url": "https://docs.github.com/rest/rate-limit",
                },
            )
        self.remaining -= 1
        out = self._rate_headers()
        if status == 200:
            out["etag"] = etag
        if link:
            out["link"] = link
        return status, out, body

    # --- the API ----------------------------------------------------------------------------

    def _page(
        self, route: str, query: dict[str, str], items: list[Any]
    ) -> tuple[int, Any, str | None]:
        per_page = int(query.get("per_page", 30))
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(items) // per_page))
        links = []
        base = f"http://github.test{PREFIX}{route}"
        if page < last:
            links.append(f'<{base}?{urlencode({**query, "page": page + 1})}>; rel="next"')
            links.append(f'<{base}?{urlencode({**query, "page": last})}>; rel="last"')
        return 200, chunk, ", ".join(links) or None

    def _route(  # noqa: PLR0911, PLR0912 - a router
        self, route: str, query: dict[str, str], accept: str
    ) -> tuple[int, Any, str | None] | None:
        parts = route.strip("/").split("/")
        if route == "/user":
            return (
                200,
                {
                    "login": self.login,
                    "id": 1,
                    "type": "User",
                    "name": "Octo Cat",
                    "html_url": f"https://github.example/{self.login}",
                    "public_repos": sum(1 for r in self.repos.values() if not r.private),
                    "followers": 42,
                },
                None,
            )
        if route == "/user/repos":
            mine = [r.as_json() for r in self._sorted() if r.owner == self.login]
            return self._page(route, query, mine)
        if len(parts) == 3 and parts[0] == "users" and parts[2] == "repos":
            public = [r.as_json() for r in self._sorted() if r.owner == parts[1] and not r.private]
            return self._page(route, query, public)
        if len(parts) == 3 and parts[0] == "orgs" and parts[2] == "repos":
            if parts[1] not in self.orgs:
                return None
            return self._page(
                route, query, [r.as_json() for r in self._sorted() if r.owner == parts[1]]
            )
        if len(parts) < 3 or parts[0] != "repos":
            return None
        repo = self.repos.get(f"{parts[1]}/{parts[2]}".lower())
        if repo is None:
            return None
        rest = parts[3:]
        if not rest:
            return 200, repo.as_json(detail=True), None
        if rest == ["stargazers"]:
            if STAR_JSON in accept:
                return self._page(route, query, repo.stars)
            return self._page(route, query, [s["user"] for s in repo.stars])
        if rest == ["issues"]:
            items = [i for i in repo.issues if i["updated_at"] >= query.get("since", "")]
            items.sort(
                key=lambda i: (i["updated_at"], i["id"]), reverse=query.get("direction") == "desc"
            )
            return self._page(route, query, items)
        if rest == ["pulls"]:
            items = sorted(repo.pulls, key=lambda i: (i["updated_at"], i["id"]), reverse=True)
            return self._page(route, query, items)
        if rest == ["releases"]:
            items = sorted(repo.releases, key=lambda i: (i["created_at"], i["id"]), reverse=True)
            return self._page(route, query, items)
        if rest == ["commits"]:
            since = query.get("since", "")
            items = [c for c in repo.commits if c["commit"]["committer"]["date"] >= since]
            items.sort(key=lambda c: c["commit"]["committer"]["date"], reverse=True)
            return self._page(route, query, items)
        if rest[0] == "traffic" and len(rest) == 2 and rest[1] in ("views", "clones"):
            if not repo.push_access:
                return 403, {"message": "Must have push access to repository"}, None
            days = repo.views if rest[1] == "views" else repo.clones
            return (
                200,
                {
                    "count": sum(d["count"] for d in days),
                    "uniques": sum(d["uniques"] for d in days),
                    rest[1]: days,
                },
                None,
            )
        return None

    def _sorted(self) -> list[FakeRepo]:
        return sorted(self.repos.values(), key=lambda r: r.id)


def standard_fixture(fake: FakeGitHub) -> FakeGitHub:
    """octo/alpha (public, busy), octo/beta (public), octo/secret (private, no traffic access
    for beta): enough data for several pages per stream at per_page=5."""
    alpha = fake.add_repo(FakeRepo(101, "octo", "alpha", forks=3, watchers=4))
    alpha.add_stars(12)
    for n in range(1, 8):
        created = BASE_TIME - timedelta(days=8 - n)
        alpha.add_issue(n, created, closed=created + timedelta(days=1) if n % 2 else None)
    for n in range(8, 14):
        created = BASE_TIME - timedelta(days=14 - n, hours=3)
        alpha.add_issue(
            n,
            created,
            pull=True,
            merged=created + timedelta(hours=20) if n % 3 else None,
            closed=created + timedelta(hours=20) if n % 3 else None,
        )
    for k in range(1, 4):
        alpha.add_release(k, BASE_TIME - timedelta(days=30 - 10 * k))
    for k in range(1, 9):
        alpha.add_commit(k, BASE_TIME - timedelta(days=9 - k))
    alpha.views = [
        {"timestamp": iso(BASE_TIME - timedelta(days=d)), "count": 10 + d, "uniques": 3}
        for d in range(3)
    ]
    alpha.clones = [{"timestamp": iso(BASE_TIME - timedelta(days=1)), "count": 2, "uniques": 1}]

    beta = fake.add_repo(FakeRepo(102, "octo", "beta", push_access=False))
    beta.add_stars(3, start=BASE_TIME - timedelta(days=2))
    beta.add_issue(1, BASE_TIME - timedelta(days=1))
    beta.add_commit(1, BASE_TIME - timedelta(days=1))

    secret = fake.add_repo(FakeRepo(103, "octo", "secret", private=True))
    secret.add_stars(2)
    secret.add_commit(1, BASE_TIME - timedelta(days=3))
    return fake
