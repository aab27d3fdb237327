"""The GitHub resource: builds a client per data source from settings (or explicit values)."""

from datetime import timedelta

import dagster as dg

from lytics.github.client import ClientOptions, GitHubClient
from lytics.github.sources import Source, cipher
from lytics.github.store import DatabaseEtags, Transaction
from lytics.settings import get_settings


class GitHubResource(dg.ConfigurableResource["GitHubResource"]):
    """GitHub API access. Unset fields come from Lytics' settings (GITHUB_API_URL,
    LYTICS_SECRET_KEY, LYTICS_GITHUB_*), so the code location needs no extra config."""

    api_url: str | None = None
    secret_key: str | None = None
    reserve: int | None = None
    per_page: int | None = None
    request_interval: float | None = None
    max_wait_seconds: float | None = None
    retries: int | None = None
    lookback_minutes: int | None = None

    def _setting(self, name: str) -> object:
        value = getattr(self, name)
        return value if value is not None else getattr(get_settings(), f"github_{name}")

    @property
    def reserve_requests(self) -> int:
        return int(str(self._setting("reserve")))

    @property
    def lookback(self) -> timedelta:
        return timedelta(minutes=int(str(self._setting("lookback_minutes"))))

    def client(self, source: Source, transaction: Transaction) -> GitHubClient:
        settings = get_settings()
        key = self.secret_key or settings.require_secret_key()
        api_url = source.api_url or self.api_url or settings.github_api_url
        options = ClientOptions(
            per_page=int(str(self._setting("per_page"))),
            request_interval=float(str(self._setting("request_interval"))),
            max_wait_seconds=float(str(self._setting("max_wait_seconds"))),
            retries=int(str(self._setting("retries"))),
        )
        return GitHubClient(
            api_url,
            source.token(cipher(key)),
            etags=DatabaseEtags(transaction, source.id),
            options=options,
        )
