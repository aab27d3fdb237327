"""GitHub data sources: one row of `app.data_sources` (kind 'github') per connected token.

`config` holds what to follow (`owner/name` or `owner/*`), the API URL (GitHub
Enterprise) and whether private repositories may be exposed; the token is
Fernet-encrypted with a key derived for this purpose only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from lytics.crypto import Cipher
from lytics.warehouse.github_tables import repositories
from lytics.warehouse.tables import data_sources, projects

KIND = "github"
CIPHER_PURPOSE = "github-token"
FOLLOW = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/(?:\*|[A-Za-z0-9._-]{1,100})$")
ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class SourceNotFoundError(LookupError):
    pass


@dataclass(frozen=True)
class Source:
    id: int
    project_id: int
    project_slug: str
    account_ref: str
    follow: tuple[str, ...]
    api_url: str | None
    expose_private: bool
    token_encrypted: bytes | None
    updated_at: datetime

    def token(self, cipher: Cipher) -> str:
        if self.token_encrypted is None:
            raise ValueError(
                f"GitHub source {self.account_ref} of {self.project_slug} has no token"
            )
        return cipher.decrypt_text(self.token_encrypted)

    def owners(self) -> set[str]:
        return {f.split("/")[0].lower() for f in self.follow if f.endswith("/*")}

    def follows(self, full_name: str) -> bool:
        name = full_name.lower()
        return name in {f.lower() for f in self.follow} or name.split("/")[0] in self.owners()


def validate_follow(entries: list[str]) -> list[str]:
    for entry in entries:
        if not FOLLOW.match(entry):
            raise ValueError(f"invalid repository {entry!r}: use owner/name or owner/*")
    return sorted(set(entries), key=str.lower)


def cipher(secret_key: str) -> Cipher:
    return Cipher(secret_key, CIPHER_PURPOSE)


def connect(
    conn: Connection,
    key: Cipher,
    project_id: int,
    account: str,
    *,
    token: str | None,
    follow: list[str],
    api_url: str | None,
    expose_private: bool | None,
) -> Source:
    """Create or update the source; omitted options keep their stored value."""
    if not ACCOUNT.match(account):
        raise ValueError(f"invalid account {account!r}")
    follow = validate_follow(follow)
    existing = conn.execute(
        select(data_sources.c.id, data_sources.c.config).where(
            data_sources.c.project_id == project_id,
            data_sources.c.kind == KIND,
            data_sources.c.account_ref == account,
        )
    ).one_or_none()
    config: dict[str, Any] = dict(existing.config) if existing else {}
    if follow:
        config["follow"] = sorted({*config.get("follow", []), *follow}, key=str.lower)
    config.setdefault("follow", [])
    if api_url is not None:
        config["api_url"] = api_url.rstrip("/")
    if expose_private is not None:
        config["expose_private"] = expose_private
    config.setdefault("expose_private", False)
    if existing is None and not token:
        raise ValueError("a new GitHub source needs a token (--token)")
    values: dict[str, Any] = {"config": config, "updated_at": func.now()}
    if token:
        values["access_token_encrypted"] = key.encrypt_text(token)
    statement = (
        insert(data_sources)
        .values(project_id=project_id, kind=KIND, account_ref=account, **values)
        .on_conflict_do_update(index_elements=["project_id", "kind", "account_ref"], set_=values)
        .returning(data_sources.c.id)
    )
    source_id = int(conn.execute(statement).scalar_one())
    # Exposure follows the option at once, without waiting for the next sync.
    conn.execute(
        update(repositories)
        .where(repositories.c.source_id == source_id)
        .values(exposed=or_(~repositories.c.private, literal(bool(config["expose_private"]))))
    )
    return get_source(conn, source_id)


def unfollow(conn: Connection, project_id: int, account: str, entries: list[str]) -> Source:
    source = find_source(conn, project_id, account)
    drop = {e.lower() for e in entries}
    follow = [f for f in source.follow if f.lower() not in drop]
    conn.execute(
        update(data_sources)
        .where(data_sources.c.id == source.id)
        .values(
            config=data_sources.c.config.op("||")({"follow": follow}),
            updated_at=func.now(),
        )
    )
    return get_source(conn, source.id)


def remove(conn: Connection, project_id: int, account: str) -> None:
    """Forget the source, its cursors, ETags and the data it brought in (cascades)."""
    source = find_source(conn, project_id, account)
    conn.execute(delete(data_sources).where(data_sources.c.id == source.id))


def _select() -> Any:
    return select(
        data_sources.c.id,
        data_sources.c.project_id,
        projects.c.slug,
        data_sources.c.account_ref,
        data_sources.c.config,
        data_sources.c.access_token_encrypted,
        data_sources.c.updated_at,
    ).join(projects, projects.c.id == data_sources.c.project_id)


def _source(row: Any) -> Source:
    config = row.config or {}
    return Source(
        id=int(row.id),
        project_id=int(row.project_id),
        project_slug=row.slug,
        account_ref=row.account_ref,
        follow=tuple(config.get("follow", [])),
        api_url=config.get("api_url"),
        expose_private=bool(config.get("expose_private", False)),
        token_encrypted=row.access_token_encrypted,
        updated_at=row.updated_at,
    )


def get_source(conn: Connection, source_id: int) -> Source:
    row = conn.execute(_select().where(data_sources.c.id == source_id)).one_or_none()
    if row is None:
        raise SourceNotFoundError(f"no GitHub source {source_id}")
    return _source(row)


def find_source(conn: Connection, project_id: int, account: str) -> Source:
    row = conn.execute(
        _select().where(
            and_(
                data_sources.c.project_id == project_id,
                data_sources.c.kind == KIND,
                data_sources.c.account_ref == account,
            )
        )
    ).one_or_none()
    if row is None:
        raise SourceNotFoundError(f"no GitHub account {account!r} connected to this project")
    return _source(row)


def list_sources(conn: Connection, project_id: int | None = None) -> list[Source]:
    query = _select().where(data_sources.c.kind == KIND)
    if project_id is not None:
        query = query.where(data_sources.c.project_id == project_id)
    return [_source(row) for row in conn.execute(query.order_by(data_sources.c.id))]
