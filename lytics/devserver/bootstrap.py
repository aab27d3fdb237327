"""Everything `lytics dev` does before it starts processes: storage, schema, demo project."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from lytics import api_keys
from lytics.projects import count_projects, create_project
from lytics.settings import Settings
from lytics.warehouse import migrate
from lytics.warehouse.databases import dagster_database_name, ensure_database
from lytics.warehouse.engine import create_sync_engine
from lytics.warehouse.urls import render, with_database, with_driver

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DemoKeys:
    project_slug: str
    write_key: str
    secret_key: str


def dagster_url(settings: Settings, database_url: str) -> str:
    """Dagster's storage URL: psycopg2, its own database on the same server."""
    if settings.dagster_database_url is not None:
        explicit = settings.dagster_database_url.get_secret_value()
        return render(with_driver(explicit, "psycopg2"))
    name = dagster_database_name(database_url)
    ensure_database(database_url, name)
    return render(with_driver(with_database(database_url, name), "psycopg2"))


def dagster_home(settings: Settings) -> Path:
    """A DAGSTER_HOME holding the repository's dagster.yaml (the one source of truth)."""
    home = settings.data_path / "dagster"
    (home / "artifacts").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home


def ensure_demo_project(database_url: str) -> DemoKeys | None:
    """On a first start, a demo project and its keys; None when projects already exist."""
    engine = create_sync_engine(database_url)
    try:
        with engine.begin() as conn:
            if count_projects(conn) > 0:
                return None
            project = create_project(conn, "demo", "Demo project")
            write = api_keys.create_key(conn, project.id, "write", "demo")
            secret = api_keys.create_key(conn, project.id, "secret", "demo")
    finally:
        engine.dispose()
    return DemoKeys(project.slug, write.plaintext, secret.plaintext)


def migrate_schema(database_url: str) -> str:
    migrate.upgrade(database_url)
    return migrate.head_revision()


def code_server_workspace(home: Path, host: str, port: int) -> Path:
    """A workspace that points the webserver and the daemon at one shared code server
    (Dagster's deployment topology), instead of each starting its own."""
    path = home / "workspace.yaml"
    path.write_text(
        "# Written by `lytics dev` on every start: the code server it runs.\n"
        "load_from:\n"
        "  - grpc_server:\n"
        f"      host: {host}\n"
        f"      port: {port}\n"
        "      location_name: lytics\n"
    )
    return path
