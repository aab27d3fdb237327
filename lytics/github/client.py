"""A thin layer over PyGithub's requester: ETags, Link pagination and GitHub's limits.

PyGithub does the HTTP (auth header, base URL for GitHub Enterprise, pacing between
requests, error classification into its exception types). What it does not do the
way Lytics needs, this module does explicitly (see docs/github.md):

- conditional requests: the stored ETag goes out as `If-None-Match`; a 304 is
  "unchanged" (and costs no quota);
- a primary rate limit stops the run (`PrimaryRateLimitError`, with the reset time)
  instead of sleeping up to an hour inside an HTTP call, as PyGithub's GithubRetry does;
- a secondary limit waits `Retry-After` (or 60 s without one), up to a bound, for
  403 and 429 alike (GithubRetry ignores a 429 without Retry-After);
- 5xx and connection errors are retried with exponential backoff (GithubRetry's
  backoff factor is 0: immediate retries);
- a 401 raises `GitHubAuthError` with a message that says what to do.

Transport-level retries are therefore off (`retry=0`): every attempt goes through
here, is counted, and is visible in a run's metadata.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
from github import Auth, Github, GithubException
from github.Requester import Requester

log = logging.getLogger(__name__)

STAR_MEDIA_TYPE = "application/vnd.github.star+json"
JSON_MEDIA_TYPE = "application/vnd.github+json"
# GitHub's documented minimum wait after a secondary limit without Retry-After.
SECONDARY_DEFAULT_WAIT_S = 60.0
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 30.0


class GitHubError(RuntimeError):
    """Any GitHub answer the sync cannot use."""


class GitHubAuthError(GitHubError):
    """401: the token is wrong, expired or revoked. The run must fail loudly."""


class RateLimitedError(GitHubError):
    """A limit that ends the run cleanly: cursors are saved, the next run resumes."""

    def __init__(self, message: str, reset_at: datetime, kind: str) -> None:
        super().__init__(message)
        self.reset_at = reset_at
        self.kind = kind


class PrimaryRateLimitError(RateLimitedError):
    pass


class SecondaryRateLimitError(RateLimitedError):
    """A secondary limit asked for a longer wait than we are willing to sleep."""


class NotFoundError(GitHubError):
    pass


class ForbiddenError(GitHubError):
    """403 that is not a rate limit (e.g. traffic without push access)."""


class UnavailableError(GitHubError):
    """5xx or no connection, after every retry."""


class EtagStore(Protocol):
    """Where ETags (and, for some URLs, the body and next link) are remembered."""

    def get(self, url: str) -> CachedResponse | None: ...

    def put(self, url: str, cached: CachedResponse) -> None: ...


@dataclass(frozen=True)
class CachedResponse:
    etag: str
    body: Any = None
    next_url: str | None = None


@dataclass
class Page:
    url: str
    status: int
    data: Any
    next_url: str | None
    not_modified: bool = False
    etag: str | None = None
    keep_body: bool = False


@dataclass(frozen=True)
class RateBudget:
    limit: int
    remaining: int
    reset_at: datetime


@dataclass
class RequestStats:
    requests: int = 0
    conditional: int = 0
    not_modified: int = 0
    retries: int = 0
    waited_seconds: float = 0.0
    by_status: dict[int, int] = field(default_factory=dict)
    remaining: int | None = None
    reset_at: datetime | None = None

    def as_metadata(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "conditional_requests": self.conditional,
            "not_modified": self.not_modified,
            "retries": self.retries,
            "waited_seconds": round(self.waited_seconds, 2),
            "rate_limit_remaining": self.remaining,
            "rate_limit_reset_at": self.reset_at.isoformat() if self.reset_at else None,
        }


@dataclass(frozen=True)
class ClientOptions:
    per_page: int = 100
    request_interval: float = 0.25
    max_wait_seconds: float = 120.0
    retries: int = 4
    timeout: int = 30


def canonical(url: str, prefix: str = "") -> str:
    """Path (without the API's own prefix, e.g. GitHub Enterprise's /api/v3) and sorted
    query: the key under which an ETag is stored, the same for a URL we build and the
    same URL handed back in a Link header."""
    parts = urlsplit(url)
    path = parts.path
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return f"{path}?{query}" if query else path


def next_link(headers: Mapping[str, Any]) -> str | None:
    """The `rel="next"` URL of a Link header, if any."""
    for part in str(headers.get("link", "")).split(","):
        section = part.split(";")
        if len(section) < 2:
            continue
        target = section[0].strip()
        if any(s.strip() == 'rel="next"' for s in section[1:]) and target.startswith("<"):
            return target[1:-1]
    return None


def _reset_at(headers: Mapping[str, Any], now: datetime) -> datetime:
    value = headers.get("x-ratelimit-reset")
    try:
        return datetime.fromtimestamp(int(float(value)), UTC) if value else now
    except (TypeError, ValueError):
        return now


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class GitHubClient:
    """One token, one base URL: the REST calls the sync makes, with the rules above."""

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        etags: EtagStore | None = None,
        options: ClientOptions | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.options = options or ClientOptions()
        self.api_url = api_url.rstrip("/")
        self._prefix = urlsplit(self.api_url).path.rstrip("/")
        self._github = Github(
            base_url=self.api_url,
            auth=Auth.Token(token),
            # No transport retries: this class decides, counts and bounds every retry.
            retry=0,
            per_page=self.options.per_page,
            timeout=self.options.timeout,
            seconds_between_requests=self.options.request_interval or None,
        )
        self._requester: Requester = self._github.requester
        self._etags = etags
        self._sleep = sleep
        self._now = now
        self.stats = RequestStats()

    def close(self) -> None:
        self._github.close()

    # --- one request ---------------------------------------------------------------

    def _send(self, url: str, headers: dict[str, str]) -> tuple[int, dict[str, Any], str]:
        attempt = 0
        while True:
            try:
                status, response_headers, body = self._requester.requestJson(
                    "GET", url, headers=dict(headers)
                )
            except requests.RequestException as exc:
                if attempt >= self.options.retries:
                    raise UnavailableError(f"GitHub unreachable at {self.api_url}: {exc}") from exc
                attempt += 1
                self._wait(self._backoff(attempt), f"connection error ({type(exc).__name__})")
                continue
            self._count(status, response_headers)
            wait = self._retry_wait(status, response_headers, body, attempt)
            if wait is None:
                return status, response_headers, body
            attempt += 1
            self._wait(wait, f"HTTP {status} on {url}")

    def _count(self, status: int, headers: Mapping[str, Any]) -> None:
        self.stats.requests += 1
        self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
        if "x-ratelimit-remaining" in headers:
            self.stats.remaining = int(float(headers["x-ratelimit-remaining"]))
            self.stats.reset_at = _reset_at(headers, self._now())

    def _backoff(self, attempt: int) -> float:
        return float(min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))

    def _wait(self, seconds: float, why: str) -> None:
        log.warning("github: waiting %.1f s before retrying (%s)", seconds, why)
        self.stats.retries += 1
        self.stats.waited_seconds += seconds
        self._sleep(seconds)

    def _retry_wait(
        self, status: int, headers: Mapping[str, Any], body: str, attempt: int
    ) -> float | None:
        """Seconds to wait before trying again, None to hand the answer back; or raise."""
        if status < 400:
            return None
        message = _message(body)
        now = self._now()
        if status in (403, 429):
            primary = headers.get("x-ratelimit-remaining") == "0" or (
                Requester.isPrimaryRateLimitError(message) and "retry-after" not in headers
            )
            if primary:
                reset = _reset_at(headers, now)
                raise PrimaryRateLimitError(
                    f"GitHub primary rate limit reached; it resets at {reset.isoformat()}",
                    reset,
                    "primary",
                )
            retry_after = _retry_after(headers)
            if retry_after is not None or status == 429 or Requester.isRateLimitError(message):
                wait = SECONDARY_DEFAULT_WAIT_S if retry_after is None else retry_after
                if wait > self.options.max_wait_seconds or attempt >= self.options.retries:
                    raise SecondaryRateLimitError(
                        f"GitHub secondary rate limit: asked to wait {wait:.0f} s",
                        now + timedelta(seconds=wait),
                        "secondary",
                    )
                return wait
            return None
        if status >= 500:
            if attempt >= self.options.retries:
                raise UnavailableError(
                    f"GitHub answered {status} {attempt + 1} times at {self.api_url}: {message}"
                )
            retry_after = _retry_after(headers)
            return retry_after if retry_after is not None else self._backoff(attempt + 1)
        return None

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        accept: str = JSON_MEDIA_TYPE,
        keep_body: bool = False,
        conditional: bool = True,
    ) -> Page:
        """GET one page. With a stored ETag the request is conditional; a 304 returns
        the cached body (when kept) and `not_modified=True`."""
        url = path
        if params:
            url = f"{path}{'&' if '?' in path else '?'}{urlencode(params)}"
        key = canonical(url, self._prefix)
        cached = self._etags.get(key) if (self._etags and conditional) else None
        headers = {"Accept": accept}
        if cached is not None:
            headers["If-None-Match"] = cached.etag
            self.stats.conditional += 1
        status, response_headers, body = self._send(url, headers)
        if status == 304 and cached is not None:
            self.stats.not_modified += 1
            return Page(key, 304, cached.body, cached.next_url, not_modified=True)
        if status >= 400:
            raise _error(status, response_headers, body, key, self.api_url)
        data = json.loads(body) if body else None
        following = next_link(response_headers)
        etag = response_headers.get("etag") if status == 200 else None
        return Page(key, status, data, following, etag=etag, keep_body=keep_body)

    def remember(self, page: Page) -> None:
        """Store a page's ETag, once what it brought is committed: a crash in between
        must mean a full re-read next time, never a 304 over data that was lost."""
        if self._etags is not None and page.etag and not page.not_modified:
            body = page.data if page.keep_body else None
            self._etags.put(page.url, CachedResponse(page.etag, body, page.next_url))

    def pages(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        accept: str = JSON_MEDIA_TYPE,
        keep_body: bool = False,
    ) -> Iterator[Page]:
        """Follow `Link: rel="next"` from the first page, one page at a time."""
        page = self.get(path, params, accept=accept, keep_body=keep_body)
        yield page
        while page.next_url:
            page = self.get(page.next_url, accept=accept, keep_body=keep_body)
            yield page

    def rate_limit(self) -> RateBudget:
        """GET /rate_limit: free (it does not count against the limit)."""
        status, headers, body = self._send("/rate_limit", {"Accept": JSON_MEDIA_TYPE})
        if status >= 400:
            raise _error(status, headers, body, "/rate_limit", self.api_url)
        core = (json.loads(body).get("resources") or {}).get("core") or {}
        reset = datetime.fromtimestamp(int(core.get("reset", 0)), UTC)
        budget = RateBudget(int(core.get("limit", 0)), int(core.get("remaining", 0)), reset)
        self.stats.remaining, self.stats.reset_at = budget.remaining, budget.reset_at
        return budget


def _message(body: str) -> str:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return body[:200]
    return str(data.get("message", "")) if isinstance(data, dict) else ""


def _error(status: int, headers: dict[str, Any], body: str, url: str, api_url: str) -> GitHubError:
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = {"message": body[:200]}
    # PyGithub's own classification, so the errors read the way its users know them.
    exc: GithubException = Requester.createException(status, headers, data)
    message = _message(body) or str(exc)
    if status == 401:
        return GitHubAuthError(
            f"GitHub rejected the token (401 {message}) at {api_url}: it is wrong, expired or "
            "revoked. Store a valid one with `lytics github connect PROJECT ACCOUNT --token -`."
        )
    if status == 404:
        return NotFoundError(f"GitHub has no {url} (404), or the token cannot see it")
    if status == 403:
        return ForbiddenError(f"GitHub refused {url} (403 {message})")
    return GitHubError(f"GitHub answered {status} for {url}: {message}")
