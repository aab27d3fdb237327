"""Where partitions are written: an S3 bucket, or a local folder with the same semantics.

Both expose the few operations the publisher needs. Keys are `/`-separated and
relative to the bucket (S3) or the folder (local). Errors come out as
`StoreError`, which says whether retrying can help and never carries a secret.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PROBE_KEY = "_lytics_write_probe"
DELETE_BATCH = 1000  # S3's DeleteObjects limit
# Error codes that no retry will fix: the run fails at once with a clear message.
PERMANENT_CODES = {
    "InvalidAccessKeyId": "the access key id is not known to the S3 service",
    "SignatureDoesNotMatch": "the secret access key does not match the access key id",
    "AccessDenied": "the credentials are not allowed to write there",
    "AllAccessDisabled": "all access to the bucket is disabled",
    "ExpiredToken": "the session token has expired",
    "InvalidToken": "the session token is not valid",
    "NoSuchBucket": "the bucket does not exist",
    "InvalidBucketName": "the bucket name is not valid",
    "PermanentRedirect": "the bucket is in another region: set the destination's region",
    "AuthorizationHeaderMalformed": "the region does not match the bucket's",
}


class StoreError(RuntimeError):
    """A destination refused or failed an operation."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Store(Protocol):
    @property
    def location(self) -> str:
        """Where it writes, for humans and metadata (no secrets)."""

    def upload(self, path: Path, key: str, content_type: str) -> None: ...
    def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...
    def get_bytes(self, key: str) -> bytes | None: ...
    def move(self, source: str, target: str) -> None: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete(self, keys: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class S3Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never print a secret by accident
        return f"S3Credentials(access_key_id={self.access_key_id[:4]}…)"


class S3Store:
    def __init__(
        self,
        bucket: str,
        *,
        region: str,
        endpoint_url: str | None = None,
        credentials: S3Credentials | None = None,
        max_attempts: int = 8,
        multipart_bytes: int = 16 * 1024 * 1024,
        concurrency: int = 4,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        config = Config(
            region_name=region,
            # "standard": exponential backoff with jitter on throttling, 5xx and
            # connection errors, and a retry quota so an outage does not stampede.
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=10,
            read_timeout=60,
            # S3-compatible servers (and IP endpoints) want path-style addressing.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        session = boto3.session.Session(
            aws_access_key_id=credentials.access_key_id if credentials else None,
            aws_secret_access_key=credentials.secret_access_key if credentials else None,
            aws_session_token=credentials.session_token if credentials else None,
        )
        self._client: S3Client = session.client("s3", endpoint_url=endpoint_url, config=config)
        # Files above one part go up in parts of this size, a few at once; a
        # failed upload is aborted by the transfer manager (no orphaned parts billed).
        self._transfer = TransferConfig(
            multipart_threshold=multipart_bytes,
            multipart_chunksize=multipart_bytes,
            max_concurrency=concurrency,
            use_threads=concurrency > 1,
        )

    @property
    def location(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}{where}"

    def _error(self, exc: Exception, action: str) -> StoreError:
        if isinstance(exc, NoCredentialsError):
            return StoreError(
                f"{action} {self.location}: no credentials (store them on the destination, "
                "or configure the default AWS credential chain)",
                permanent=True,
            )
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in PERMANENT_CODES:
                return StoreError(
                    f"{action} {self.location} failed: {code}: {PERMANENT_CODES[code]}",
                    permanent=True,
                )
            return StoreError(
                f"{action} {self.location} failed: {code or 'error'} (HTTP {status})",
                permanent=status in {400, 401, 403, 404},
            )
        return StoreError(f"{action} {self.location} failed: {exc}", permanent=False)

    def upload(self, path: Path, key: str, content_type: str) -> None:
        try:
            self._client.upload_file(
                str(path),
                self.bucket,
                key,
                ExtraArgs={"ContentType": content_type},
                Config=self._transfer,
            )
        except (BotoCoreError, ClientError, boto3.exceptions.S3UploadFailedError) as exc:
            cause = exc.__cause__ or exc.__context__
            raise self._error(
                cause if isinstance(cause, ClientError | BotoCoreError) else exc, f"upload {key} to"
            ) from None

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, f"write {key} to") from None

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise self._error(exc, f"read {key} from") from None
        except BotoCoreError as exc:
            raise self._error(exc, f"read {key} from") from None

    def move(self, source: str, target: str) -> None:
        # Server-side copy (multipart for large objects), no bytes through us.
        try:
            self._client.copy(
                {"Bucket": self.bucket, "Key": source}, self.bucket, target, Config=self._transfer
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, f"copy {source} to {target} in") from None
        self.delete([source])

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, f"list {prefix} in") from None
        return keys

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            chunk = keys[start : start + DELETE_BATCH]
            try:
                answer = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                )
            except (BotoCoreError, ClientError) as exc:
                raise self._error(exc, "delete objects in") from None
            if errors := answer.get("Errors"):
                first = errors[0]
                raise StoreError(
                    f"delete {first.get('Key')} in {self.location} failed: {first.get('Code')}",
                    permanent=False,
                )


class LocalStore:
    """A folder that behaves like a bucket: files appear whole (write aside, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    @property
    def location(self) -> str:
        return f"file://{self.root}"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise StoreError(f"key {key!r} leaves {self.location}", permanent=True)
        return path

    def _atomic_write(self, target: Path, write: object) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
            os.close(fd)
            try:
                if isinstance(write, Path):
                    shutil.copyfile(write, tmp)
                else:
                    Path(tmp).write_bytes(write)  # type: ignore[arg-type]
                os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"write {target} failed: {exc.strerror}", permanent=False) from None

    def upload(self, path: Path, key: str, content_type: str) -> None:
        self._atomic_write(self._path(key), path)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._atomic_write(self._path(key), data)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def move(self, source: str, target: str) -> None:
        destination = self._path(target)
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._path(source), destination)  # atomic on one filesystem
        except OSError as exc:
            raise StoreError(f"move {source} failed: {exc.strerror}", permanent=False) from None

    def list(self, prefix: str) -> list[str]:
        # Like S3: a plain string prefix, not a directory.
        base = self._path(prefix.rsplit("/", 1)[0]) if "/" in prefix else self.root
        if not base.is_dir():
            return []
        keys = [
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-")
        ]
        return sorted(k for k in keys if k.startswith(prefix))

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            # Empty folders are left behind by S3-like deletes; remove them up to the root.
            parent = path.parent
            while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent


def probe(store: Store, prefix: str = "") -> None:
    """Write, read back and delete a small object: proves the destination is usable."""
    key = f"{prefix.strip('/')}/{PROBE_KEY}-{uuid.uuid4().hex}".lstrip("/")
    store.put_bytes(key, b"lytics", "text/plain")
    try:
        if store.get_bytes(key) != b"lytics":
            raise StoreError(f"{store.location} did not return what was written", permanent=True)
    finally:
        store.delete([key])
