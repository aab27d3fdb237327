"""Fixtures: real Postgres (a database per test), real HTTP, a real S3 protocol server."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import Engine

from lytics.settings import Settings, get_settings
from lytics.warehouse.engine import create_sync_engine
from tests.support import TEST_SECRET
from tests.support.dagster_ui import running_webserver
from tests.support.pipeline import Pipeline, dbt_assets_definition, point_pipeline_at
from tests.support.postgres import (
    create_database,
    drop_database,
    migrated_template,
    server_for_tests,
    unique_name,
)

# The ingest API, the fake GitHub and the fake Resend as fixtures, defined once.
pytest_plugins = ["tests.support.fixtures"]

# As an activated virtualenv: dagster-dbt runs `dbt` by name, from PATH.
os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a Postgres server we may create databases on (psycopg 3 driver)."""
    with server_for_tests(os.environ.get("LYTICS_TEST_DATABASE_URL")) as url:
        yield url


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> Iterator[str]:
    with migrated_template(pg_server) as name:
        yield name


@pytest.fixture
def empty_database_url(pg_server: str) -> Iterator[str]:
    """A brand-new database with no schema at all (for migration tests)."""
    name = unique_name("empty")
    url = create_database(pg_server, name)
    yield url
    drop_database(pg_server, name)


@pytest.fixture
def database_url(pg_server: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for this test alone."""
    name = unique_name("t")
    url = create_database(pg_server, name, template=template_db)
    yield url
    drop_database(pg_server, name)


@pytest.fixture(scope="session")
def dagster_graphql_url(
    pg_server: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """GraphQL URL of a real dagster-webserver on the lytics code location (no daemon)."""
    name = unique_name("dagster_ui")
    url = create_database(pg_server, name, template=template_db)
    with running_webserver(url, tmp_path_factory.mktemp("dagster-home")) as graphql:
        yield graphql
    drop_database(pg_server, name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = create_sync_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        data_dir=tmp_path / "data",
        environment="test",
    )


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    # Settings are cached per process; tests that change the environment must not leak.
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 protocol server (moto's, over HTTP) on a free port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dbt_assets() -> dg.AssetsDefinition:
    """The dbt multi-asset as the code location builds it (the manifest prepared once)."""
    return dbt_assets_definition()


@pytest.fixture
def pipeline(
    database_url: str, dbt_assets: dg.AssetsDefinition, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Pipeline]:
    """The metrics pipeline over this test's database, on a throwaway Dagster instance."""
    point_pipeline_at(database_url, monkeypatch)
    with dg.DagsterInstance.ephemeral() as instance:
        yield Pipeline(database_url, instance, dbt_assets)
