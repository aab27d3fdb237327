"""Projects: a site or app that owns its data, its keys and its settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from lytics.warehouse.tables import projects

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class ProjectExistsError(ValueError):
    pass


class ProjectNotFoundError(LookupError):
    pass


@dataclass(frozen=True)
class Project:
    id: int
    slug: str
    name: str
    settings: dict[str, Any]
    created_at: datetime


def validate_slug(slug: str) -> str:
    if not SLUG.match(slug):
        raise ValueError(
            f"invalid project slug {slug!r}: use 1-63 lowercase letters, digits and '-', "
            "starting with a letter or digit"
        )
    return slug


def create_project(
    conn: Connection, slug: str, name: str | None = None, settings: dict[str, Any] | None = None
) -> Project:
    validate_slug(slug)
    try:
        with conn.begin_nested():
            row = conn.execute(
                insert(projects)
                .values(slug=slug, name=name or slug, settings=settings or {})
                .returning(*projects.c)
            ).one()
    except IntegrityError as exc:
        raise ProjectExistsError(f"project {slug!r} already exists") from exc
    return Project(**row._mapping)


def list_projects(conn: Connection) -> list[Project]:
    return [
        Project(**row._mapping) for row in conn.execute(select(*projects.c).order_by(projects.c.id))
    ]


def get_project(conn: Connection, slug: str) -> Project:
    row = conn.execute(select(*projects.c).where(projects.c.slug == slug)).one_or_none()
    if row is None:
        raise ProjectNotFoundError(f"no project {slug!r}")
    return Project(**row._mapping)


def count_projects(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(projects)).scalar_one())
