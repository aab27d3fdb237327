"""A served ingest API on a fresh database, with a project and its keys."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine, text

from lytics import api_keys
from lytics.projects import create_project
from lytics.settings import Settings
from lytics_ingest_api.app import create_app
from tests.support.http import HTTP_TIMEOUT_S, serve


@dataclass
class Ingest:
    base: str
    engine: Engine
    project_id: int
    write_key: str
    secret_key: str

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("auth", (self.write_key, ""))
        return httpx.post(f"{self.base}{path}", timeout=HTTP_TIMEOUT_S, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", timeout=HTTP_TIMEOUT_S, **kwargs)

    def bearer(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.secret_key}"}

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))


def new_project(
    engine: Engine, slug: str, settings: dict[str, Any] | None = None
) -> tuple[int, str, str]:
    with engine.begin() as conn:
        project = create_project(conn, slug, settings=settings)
        write = api_keys.create_key(conn, project.id, "write")
        secret = api_keys.create_key(conn, project.id, "secret")
    return project.id, write.plaintext, secret.plaintext


@contextlib.contextmanager
def served_ingest(settings: Settings, engine: Engine, **project_settings: Any) -> Iterator[Ingest]:
    project_id, write, secret = new_project(engine, "site", project_settings or None)
    with serve(create_app(settings)) as base:
        yield Ingest(base, engine, project_id, write, secret)
