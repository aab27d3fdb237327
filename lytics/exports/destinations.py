"""Export destinations: configuration rows in `app.export_destinations`.

A destination belongs to a project (its client's bucket) or, with no project,
is a deployment-wide backup that receives every project's export. S3
credentials are stored encrypted (`Cipher(secret_key, CIPHER_PURPOSE)`); with
none stored, boto3's default credential chain (environment, instance role) is
used.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from lytics.crypto import Cipher
from lytics.exports.datasets import DATASETS
from lytics.exports.formats import FORMATS
from lytics.exports.stores import LocalStore, S3Credentials, S3Store, Store
from lytics.exports.windows import FREQUENCIES
from lytics.settings import Settings
from lytics.warehouse.tables import export_destinations

CIPHER_PURPOSE = "exports"
DEFAULT_BACKUP_NAME = "backup"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class DestinationNotFoundError(LookupError):
    pass


@dataclass(frozen=True)
class Destination:
    id: int
    project_id: int | None
    name: str
    kind: str
    bucket: str | None
    prefix: str
    region: str | None
    endpoint_url: str | None
    local_path: str | None
    format: str
    frequency: str
    datasets: tuple[str, ...]
    is_backup: bool
    enabled: bool
    # Kept out of repr and of `public()`: it must never reach a log line or an answer.
    credentials_encrypted: bytes | None = field(default=None, repr=False)

    @property
    def location(self) -> str:
        if self.kind == "s3":
            base = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
            return f"{base} at {self.endpoint_url}" if self.endpoint_url else base
        return f"file://{self.local_path}/{self.prefix}".rstrip("/")

    @property
    def label(self) -> str:
        owner = "backup" if self.project_id is None else f"project {self.project_id}"
        return f"{self.name} ({owner})"

    def public(self) -> dict[str, Any]:
        """What may be shown to anyone who may see the destination: no credentials."""
        return {
            "id": self.id,
            "project_id": self.project_id,
            "name": self.name,
            "kind": self.kind,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "region": self.region,
            "endpoint_url": self.endpoint_url,
            "local_path": self.local_path,
            "format": self.format,
            "frequency": self.frequency,
            "datasets": list(self.datasets),
            "is_backup": self.is_backup,
            "enabled": self.enabled,
            "credentials": "stored" if self.credentials_encrypted else "default chain",
        }


def _from_row(row: Any) -> Destination:
    m = row._mapping
    return Destination(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        kind=m["kind"],
        bucket=m["bucket"],
        prefix=m["prefix"],
        region=m["region"],
        endpoint_url=m["endpoint_url"],
        local_path=m["local_path"],
        format=m["format"],
        frequency=m["frequency"],
        datasets=tuple(m["datasets"]),
        is_backup=m["is_backup"],
        enabled=m["enabled"],
        credentials_encrypted=bytes(m["credentials_encrypted"])
        if m["credentials_encrypted"] is not None
        else None,
    )


def _validate(
    *, name: str, kind: str, fmt: str, frequency: str, datasets: tuple[str, ...], prefix: str
) -> None:
    if not NAME.match(name):
        raise ValueError(
            f"invalid destination name {name!r}: use 1-63 lowercase letters, digits, '-' and '_'"
        )
    if kind not in {"s3", "local"}:
        raise ValueError("kind must be s3 or local")
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    if frequency not in FREQUENCIES:
        raise ValueError(f"frequency must be one of {', '.join(FREQUENCIES)}")
    unknown = set(datasets) - set(DATASETS)
    if not datasets or unknown:
        raise ValueError(f"datasets must be some of {', '.join(DATASETS)}")
    if prefix.startswith("/") or ".." in prefix.split("/"):
        raise ValueError("prefix must be relative and must not contain '..'")


def encrypt_credentials(cipher: Cipher, credentials: S3Credentials) -> bytes:
    data = {
        "access_key_id": credentials.access_key_id,
        "secret_access_key": credentials.secret_access_key,
    }
    if credentials.session_token:
        data["session_token"] = credentials.session_token
    return cipher.encrypt(json.dumps(data).encode())


def decrypt_credentials(cipher: Cipher, blob: bytes) -> S3Credentials:
    """Raises `lytics.crypto.InvalidToken` when LYTICS_SECRET_KEY is not the one used to store."""
    data = json.loads(cipher.decrypt(blob))
    return S3Credentials(
        data["access_key_id"], data["secret_access_key"], data.get("session_token")
    )


def add_destination(
    conn: Connection,
    *,
    project_id: int | None,
    name: str,
    kind: str,
    bucket: str | None = None,
    prefix: str = "",
    region: str | None = None,
    endpoint_url: str | None = None,
    local_path: str | None = None,
    credentials: S3Credentials | None = None,
    cipher: Cipher | None = None,
    fmt: str = "parquet",
    frequency: str = "daily",
    datasets: tuple[str, ...] = ("events",),
) -> Destination:
    prefix = prefix.strip("/")
    _validate(name=name, kind=kind, fmt=fmt, frequency=frequency, datasets=datasets, prefix=prefix)
    if kind == "s3" and not bucket:
        raise ValueError("an s3 destination needs a bucket")
    if kind == "local" and not local_path:
        raise ValueError("a local destination needs a path")
    blob = None
    if credentials is not None:
        if cipher is None:
            raise ValueError("credentials need LYTICS_SECRET_KEY to be stored encrypted")
        blob = encrypt_credentials(cipher, credentials)
    row = conn.execute(
        insert(export_destinations)
        .values(
            project_id=project_id,
            name=name,
            kind=kind,
            bucket=bucket if kind == "s3" else None,
            prefix=prefix,
            region=region,
            endpoint_url=endpoint_url,
            local_path=str(Path(local_path).expanduser().resolve()) if local_path else None,
            credentials_encrypted=blob,
            format=fmt,
            frequency=frequency,
            datasets=list(datasets),
            is_backup=project_id is None,
        )
        .returning(*export_destinations.c)
    ).one()
    return _from_row(row)


def list_destinations(
    conn: Connection, *, project_id: int | None = None, backup: bool | None = None
) -> list[Destination]:
    query = select(*export_destinations.c).order_by(
        export_destinations.c.project_id.nulls_first(), export_destinations.c.name
    )
    if project_id is not None:
        query = query.where(export_destinations.c.project_id == project_id)
    if backup is not None:
        query = query.where(export_destinations.c.is_backup == backup)
    return [_from_row(r) for r in conn.execute(query)]


def get_destination(conn: Connection, project_id: int | None, name: str) -> Destination:
    owner = (
        export_destinations.c.project_id.is_(None)
        if project_id is None
        else export_destinations.c.project_id == project_id
    )
    row = conn.execute(
        select(*export_destinations.c).where(owner, export_destinations.c.name == name)
    ).one_or_none()
    if row is None:
        where = "backup" if project_id is None else "this project"
        raise DestinationNotFoundError(f"no export destination {name!r} for {where}")
    return _from_row(row)


def remove_destination(conn: Connection, project_id: int | None, name: str) -> Destination:
    found = get_destination(conn, project_id, name)
    conn.execute(delete(export_destinations).where(export_destinations.c.id == found.id))
    return found


def ensure_default_backup(conn: Connection, settings: Settings) -> Destination | None:
    """The backup destination the deployment starts with, unless one exists or it is off.

    S3 (LYTICS_BACKUP_BUCKET, default credential chain) when configured, else a
    local folder: with nothing configured, exports still land somewhere visible.
    """
    if not settings.exports_default_backup:
        return None
    if list_destinations(conn, backup=True):
        return None
    values: dict[str, Any] = {
        "project_id": None,
        "name": DEFAULT_BACKUP_NAME,
        "format": "parquet",
        "frequency": "hourly",
        "datasets": ["events", "metrics"],
        "is_backup": True,
    }
    if settings.backup_bucket:
        values.update(
            kind="s3",
            bucket=settings.backup_bucket,
            region=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url,
        )
    else:
        values.update(kind="local", local_path=str(settings.exports_local_path))
    statement = (
        pg_insert(export_destinations)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["name"], index_where=export_destinations.c.project_id.is_(None)
        )
        .returning(*export_destinations.c)
    )
    row = conn.execute(statement).one_or_none()
    return _from_row(row) if row is not None else None


def open_store(destination: Destination, settings: Settings) -> Store:
    """A client for the destination; decrypts its credentials (never logs them)."""
    if destination.kind == "local":
        assert destination.local_path is not None
        return LocalStore(Path(destination.local_path))
    assert destination.bucket is not None
    credentials = None
    if destination.credentials_encrypted is not None:
        cipher = Cipher(settings.require_secret_key(), CIPHER_PURPOSE)
        credentials = decrypt_credentials(cipher, destination.credentials_encrypted)
    return S3Store(
        destination.bucket,
        region=destination.region or settings.s3_region,
        endpoint_url=destination.endpoint_url or settings.s3_endpoint_url,
        credentials=credentials,
        max_attempts=settings.exports_s3_max_attempts,
        multipart_bytes=settings.exports_multipart_mb * 1024 * 1024,
        concurrency=settings.exports_upload_concurrency,
    )
