"""Fixtures shared by several test files, registered through `pytest_plugins` in conftest.

A test file that needs a variant defines its own fixture of the same name, which
pytest uses instead of the shared one in that file: `api_settings` for other
settings, `api` itself for an API with data seeded around it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from lytics.settings import Settings
from tests.support.fake_resend import FakeResend, fake_resend
from tests.support.github import Served, served_github
from tests.support.ingest import Ingest, served_ingest


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    """The settings `api` serves with: a file overrides this fixture for a variant."""
    return settings


@pytest.fixture
def api(api_settings: Settings, engine: Engine) -> Iterator[Ingest]:
    """The ingest API served on this test's database, with project `site` and its keys."""
    with served_ingest(api_settings, engine) as ingest:
        yield ingest


@pytest.fixture
def github() -> Iterator[Served]:
    """A served fake GitHub holding the standard fixture (tests/support/fake_github.py)."""
    with served_github() as served:
        yield served


@pytest.fixture
def fake() -> Iterator[FakeResend]:
    """A served fake Resend limited to 50 requests a second (the rate digest_settings sends at)."""
    with fake_resend(limit=50) as server:
        yield server
