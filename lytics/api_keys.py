"""Project keys: public write keys for SDKs and secret keys for reads and servers.

A key is shown once when created. Only its SHA-256 and a short visible prefix
are stored; a request's key is hashed and looked up by hash, so no comparison
of secrets ever happens in Python.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, Select, insert, or_, select, update

from lytics.warehouse.tables import api_keys, projects

KeyKind = Literal["write", "secret"]
KEY_PREFIXES: dict[KeyKind, str] = {"write": "lyw_", "secret": "lys_"}
VISIBLE_CHARS = 12


class KeyNotFoundError(LookupError):
    pass


@dataclass(frozen=True)
class IssuedKey:
    """A key as created: the plaintext exists only in this object."""

    id: int
    project_id: int
    kind: KeyKind
    prefix: str
    plaintext: str


@dataclass(frozen=True)
class KeyInfo:
    id: int
    project_id: int
    project_slug: str
    kind: KeyKind
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None

    def active(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def hash_key(plaintext: str) -> bytes:
    return hashlib.sha256(plaintext.encode()).digest()


def new_plaintext(kind: KeyKind) -> str:
    # 32 random bytes: far beyond guessing, and the prefix tells a leaked key's kind.
    return KEY_PREFIXES[kind] + secrets.token_urlsafe(32)


def create_key(conn: Connection, project_id: int, kind: KeyKind, name: str = "") -> IssuedKey:
    plaintext = new_plaintext(kind)
    prefix = plaintext[:VISIBLE_CHARS]
    key_id: int = conn.execute(
        insert(api_keys)
        .values(
            project_id=project_id,
            kind=kind,
            name=name,
            prefix=prefix,
            key_hash=hash_key(plaintext),
        )
        .returning(api_keys.c.id)
    ).scalar_one()
    return IssuedKey(key_id, project_id, kind, prefix, plaintext)


def _info_query() -> Select[Any]:
    return select(
        api_keys.c.id,
        api_keys.c.project_id,
        projects.c.slug.label("project_slug"),
        api_keys.c.kind,
        api_keys.c.name,
        api_keys.c.prefix,
        api_keys.c.created_at,
        api_keys.c.revoked_at,
        api_keys.c.expires_at,
    ).join(projects, projects.c.id == api_keys.c.project_id)


def list_keys(conn: Connection, project_id: int | None = None) -> list[KeyInfo]:
    query = _info_query().order_by(api_keys.c.id)
    if project_id is not None:
        query = query.where(api_keys.c.project_id == project_id)
    return [KeyInfo(**row._mapping) for row in conn.execute(query)]


def get_key(conn: Connection, key_id: int) -> KeyInfo:
    row = conn.execute(_info_query().where(api_keys.c.id == key_id)).one_or_none()
    if row is None:
        raise KeyNotFoundError(f"no key with id {key_id}")
    return KeyInfo(**row._mapping)


def authenticate(conn: Connection, plaintext: str, kind: KeyKind) -> KeyInfo | None:
    """The active key of that kind matching the plaintext, or None."""
    now = datetime.now(UTC)
    row = conn.execute(
        _info_query().where(
            api_keys.c.key_hash == hash_key(plaintext),
            api_keys.c.kind == kind,
            api_keys.c.revoked_at.is_(None),
            or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now),
        )
    ).one_or_none()
    return KeyInfo(**row._mapping) if row is not None else None


def revoke_key(conn: Connection, key_id: int) -> KeyInfo:
    updated = conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    if updated.rowcount == 0:
        get_key(conn, key_id)  # raises if the key does not exist at all
    return get_key(conn, key_id)


def rotate_key(conn: Connection, key_id: int, grace: timedelta = timedelta(0)) -> IssuedKey:
    """Issue a replacement; the old key stops working now, or after `grace`.

    A grace period lets SDKs in the field move to the new key before the old one dies.
    """
    old = get_key(conn, key_id)
    if not old.active():
        raise KeyNotFoundError(f"key {key_id} is already revoked or expired")
    issued = create_key(conn, old.project_id, old.kind, old.name)
    if grace > timedelta(0):
        conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(expires_at=datetime.now(UTC) + grace)
        )
    else:
        revoke_key(conn, key_id)
    return issued
