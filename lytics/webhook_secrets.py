"""Shared secrets that webhook senders sign their deliveries with.

One row per (project, source) in `app.webhook_sources`; the secrets are a JSON
list of strings encrypted with `Cipher(secret_key, CIPHER_PURPOSE)`. Several
secrets can be active at once so a sender can rotate: add the new secret,
switch the sender over, remove the old one. The ingest API accepts a delivery
signed with any active secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from secrets import token_bytes, token_urlsafe

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects.postgresql import insert

from lytics.crypto import Cipher
from lytics.warehouse.tables import projects, webhook_sources

CIPHER_PURPOSE = "webhooks"
SOURCE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# Sources verified with Standard Webhooks (Svix) secrets: `whsec_` + base64 key.
STANDARD_WEBHOOKS_SOURCES = frozenset({"resend"})
STANDARD_WEBHOOKS_PREFIX = "whsec_"
MAX_SECRETS = 10
MAX_SECRET_CHARS = 1024
# Visible characters of a secret (after any `whsec_`): enough to tell secrets
# apart, a small fraction of the entropy of a generated one.
VISIBLE_CHARS = 6


class SecretNotFoundError(LookupError):
    """No active secret of that source starts with the given prefix."""


@dataclass(frozen=True)
class SourceInfo:
    project_id: int
    project_slug: str
    source: str
    prefixes: list[str]
    updated_at: datetime


def validate_source(source: str) -> str:
    if not SOURCE.match(source):
        raise ValueError(
            f"invalid webhook source {source!r}: use 1-63 lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    return source


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 after `whsec_`.

    Raises ValueError when the secret is not valid base64, so a secret pasted
    with a typo is refused when it is configured, not at the first delivery.
    """
    encoded = secret.removeprefix(STANDARD_WEBHOOKS_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            "not a Standard Webhooks secret: expected `whsec_` followed by base64"
        ) from exc
    if not key:
        raise ValueError("not a Standard Webhooks secret: the key is empty")
    return key


def generate_secret(source: str) -> str:
    validate_source(source)
    if source in STANDARD_WEBHOOKS_SOURCES:
        # The shape Svix issues: 24 random bytes, base64, behind `whsec_`.
        return STANDARD_WEBHOOKS_PREFIX + base64.b64encode(token_bytes(24)).decode()
    return token_urlsafe(32)


def secret_prefix(secret: str) -> str:
    """What `lytics webhooks list` shows: never enough of a secret to use it."""
    scheme = STANDARD_WEBHOOKS_PREFIX if secret.startswith(STANDARD_WEBHOOKS_PREFIX) else ""
    rest = secret[len(scheme) :]
    # Short hand-made secrets show less, so the visible part stays a small fraction.
    return scheme + rest[: min(VISIBLE_CHARS, len(rest) // 4)]


def _checked(source: str, secrets: list[str]) -> list[str]:
    unique: list[str] = []
    for secret in secrets:
        if not isinstance(secret, str) or not secret or secret != secret.strip():
            raise ValueError("a webhook secret must be a non-empty string without outer spaces")
        if len(secret) > MAX_SECRET_CHARS:
            raise ValueError(f"a webhook secret is at most {MAX_SECRET_CHARS} characters")
        if source in STANDARD_WEBHOOKS_SOURCES:
            standard_webhooks_key(secret)
        if secret not in unique:
            unique.append(secret)
    if len(unique) > MAX_SECRETS:
        raise ValueError(
            f"at most {MAX_SECRETS} secrets per source; remove old ones before adding more"
        )
    return unique


def encrypt_secrets(cipher: Cipher, secrets: list[str]) -> bytes:
    return cipher.encrypt(json.dumps(secrets).encode())


def decrypt_secrets(cipher: Cipher, blob: bytes) -> list[str]:
    """Raises `lytics.crypto.InvalidToken` when LYTICS_SECRET_KEY is not the one that encrypted
    them, ValueError when the decrypted data is not a list of strings."""
    value = json.loads(cipher.decrypt(bytes(blob)))
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ValueError("stored webhook secrets are not a JSON list of strings")
    return list(value)


def set_secrets(
    conn: Connection, cipher: Cipher, project_id: int, source: str, secrets: list[str]
) -> None:
    """Replace the source's secrets; an empty list removes the source (and refuses deliveries)."""
    validate_source(source)
    checked = _checked(source, secrets)
    if not checked:
        conn.execute(
            delete(webhook_sources).where(
                webhook_sources.c.project_id == project_id, webhook_sources.c.source == source
            )
        )
        return
    blob = encrypt_secrets(cipher, checked)
    statement = insert(webhook_sources).values(
        project_id=project_id, source=source, secrets_encrypted=blob
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[webhook_sources.c.project_id, webhook_sources.c.source],
            set_={"secrets_encrypted": blob, "updated_at": func.now()},
        )
    )


def _locked(
    conn: Connection, cipher: Cipher, project_id: int, source: str, *, create: bool
) -> list[str] | None:
    """The current secrets, with the row locked so concurrent changes cannot lose one."""
    if create:
        # FOR UPDATE cannot lock a row that does not exist yet; inserting it first makes
        # a concurrent first add wait on the unique index until this transaction ends.
        conn.execute(
            insert(webhook_sources)
            .values(
                project_id=project_id,
                source=source,
                secrets_encrypted=encrypt_secrets(cipher, []),
            )
            .on_conflict_do_nothing(index_elements=["project_id", "source"])
        )
    blob = conn.execute(
        select(webhook_sources.c.secrets_encrypted)
        .where(webhook_sources.c.project_id == project_id, webhook_sources.c.source == source)
        .with_for_update()
    ).scalar_one_or_none()
    return None if blob is None else decrypt_secrets(cipher, blob)


def add_secret(conn: Connection, cipher: Cipher, project_id: int, source: str, secret: str) -> int:
    """Activate one more secret (idempotent); returns how many are active."""
    validate_source(source)
    _checked(source, [secret])  # before touching the row: a bad secret changes nothing
    current = _locked(conn, cipher, project_id, source, create=True) or []
    updated = _checked(source, [*current, secret])
    set_secrets(conn, cipher, project_id, source, updated)
    return len(updated)


def remove_secret(
    conn: Connection, cipher: Cipher, project_id: int, source: str, secret_prefix: str
) -> int:
    """Deactivate the one secret starting with `secret_prefix`; returns how many remain.

    Removing the last secret removes the source: its deliveries are refused from then on.
    """
    validate_source(source)
    if not secret_prefix.removeprefix(STANDARD_WEBHOOKS_PREFIX):
        raise ValueError(
            "give the start of the secret (after any `whsec_`) as `lytics webhooks list` shows it"
        )
    current = _locked(conn, cipher, project_id, source, create=False) or []
    matches = [s for s in current if s.startswith(secret_prefix)]
    if not matches:
        raise SecretNotFoundError(f"no {source} secret starting with {secret_prefix!r}")
    if len(matches) > 1:
        raise ValueError(f"{len(matches)} secrets start with {secret_prefix!r}; give more of it")
    remaining = [s for s in current if s != matches[0]]
    set_secrets(conn, cipher, project_id, source, remaining)
    return len(remaining)


def load_secrets(conn: Connection, cipher: Cipher, project_id: int, source: str) -> list[str]:
    blob = conn.execute(
        select(webhook_sources.c.secrets_encrypted).where(
            webhook_sources.c.project_id == project_id, webhook_sources.c.source == source
        )
    ).scalar_one_or_none()
    return [] if blob is None else decrypt_secrets(cipher, blob)


def list_sources(
    conn: Connection, cipher: Cipher, project_id: int | None = None
) -> list[SourceInfo]:
    query = (
        select(
            webhook_sources.c.project_id,
            projects.c.slug,
            webhook_sources.c.source,
            webhook_sources.c.secrets_encrypted,
            webhook_sources.c.updated_at,
        )
        .join(projects, projects.c.id == webhook_sources.c.project_id)
        .order_by(projects.c.slug, webhook_sources.c.source)
    )
    if project_id is not None:
        query = query.where(webhook_sources.c.project_id == project_id)
    return [
        SourceInfo(
            project_id=row.project_id,
            project_slug=row.slug,
            source=row.source,
            prefixes=[secret_prefix(s) for s in decrypt_secrets(cipher, row.secrets_encrypted)],
            updated_at=row.updated_at,
        )
        for row in conn.execute(query)
    ]
