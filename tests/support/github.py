"""GitHub test helpers: a served fake GitHub, a connected data source, one sync."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine

from lytics.github import sources
from lytics.github.client import ClientOptions, GitHubClient
from lytics.github.store import DatabaseEtags
from lytics.github.sync import STREAMS, Sync, SyncReport
from lytics.projects import create_project
from tests.support import TEST_SECRET
from tests.support.fake_github import PREFIX, TOKEN, FakeGitHub, standard_fixture
from tests.support.http import serve

PER_PAGE = 5


@dataclass
class Served:
    fake: FakeGitHub
    api_url: str


@contextlib.contextmanager
def served_github(fixture: bool = True) -> Iterator[Served]:
    fake = FakeGitHub()
    if fixture:
        standard_fixture(fake)
    with serve(fake) as base:
        yield Served(fake, f"{base}{PREFIX}")


def connect_source(
    engine: Engine,
    api_url: str,
    *,
    slug: str = "site",
    follow: Iterable[str] = ("octo/*",),
    expose_private: bool = False,
    token: str = TOKEN,
    project_id: int | None = None,
) -> sources.Source:
    with engine.begin() as conn:
        if project_id is None:
            project_id = create_project(conn, slug).id
        return sources.connect(
            conn,
            sources.cipher(TEST_SECRET),
            project_id,
            "octo",
            token=token,
            follow=list(follow),
            api_url=api_url,
            expose_private=expose_private,
        )


def client_for(
    engine: Engine,
    source: sources.Source,
    *,
    max_wait: float = 5.0,
    retries: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> GitHubClient:
    options = ClientOptions(
        per_page=PER_PAGE, request_interval=0, max_wait_seconds=max_wait, retries=retries
    )
    assert source.api_url
    return GitHubClient(
        source.api_url,
        source.token(sources.cipher(TEST_SECRET)),
        etags=DatabaseEtags(engine.begin, source.id),
        options=options,
        sleep=sleep,
    )


def sync_once(
    engine: Engine,
    source: sources.Source,
    *,
    streams: Iterable[str] = STREAMS,
    only: Iterable[str] | None = None,
    reserve: int = 10,
    max_wait: float = 5.0,
    retries: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncReport:
    """One sync run; `sleep` is how the client waits before a retry (to record its waits)."""
    with engine.connect() as conn:
        source = sources.get_source(conn, source.id)
    client = client_for(engine, source, max_wait=max_wait, retries=retries, sleep=sleep)
    try:
        return Sync(
            engine.begin,
            source,
            client,
            streams=streams,
            only_repositories=only,
            reserve=reserve,
            lookback=timedelta(hours=1),
        ).run()
    finally:
        client.close()
