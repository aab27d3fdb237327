"""Where partitions are written: an S3 bucket, or a local folder with the same semantics.

Both expose the few operations the publisher needs. Keys are `/`-separated and
relative to the bucket (S3) or the folder (local). Errors come out as
`StoreError`, which says whether retrying can help and never carries a secret.

A data file is written in two steps so a partition can be replaced as a whole:
`stage` uploads it without making it visible at its key, `promote` makes it
visible (or `abort` drops it). On S3 a staged file is a multipart upload created
at its final key and not yet completed, so promotion is CompleteMultipartUpload:
no byte is copied a second time. On a folder it is a file under `_staging/`,
promoted by an atomic rename.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

PROBE_KEY = "_lytics_write_probe"
DELETE_BATCH = 1000  # S3's DeleteObjects limit
MAX_PARTS = 10_000  # S3's limit of parts per multipart upload
STAGING = "_staging"  # a folder's staged files; `_` hides it from Hive-style readers
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


@dataclass(frozen=True)
class Part:
    """One uploaded part of a staged S3 file: what CompleteMultipartUpload needs back."""

    number: int
    etag: str
    crc32: str | None = None


@dataclass(frozen=True)
class Staged:
    """A file uploaded but not yet visible at `key`; only the store that staged it uses it.

    `handle` is the multipart upload id (S3) or the staged file's key (folder).
    """

    key: str
    handle: str
    parts: tuple[Part, ...] = ()


class Store(Protocol):
    @property
    def location(self) -> str:
        """Where it writes, for humans and metadata (no secrets)."""

    def stage(self, path: Path, key: str, content_type: str) -> Staged:
        """Upload `path` for `key` without making it visible to readers."""
        ...

    def promote(self, staged: Staged) -> None:
        """Make a staged file visible at its key, whole (replacing what was there)."""
        ...

    def abort(self, staged: Staged) -> None:
        """Drop a staged file; one already gone is not an error."""
        ...

    def staged_under(self, directory: str) -> list[Staged]:
        """Staged, never promoted files for keys directly in `directory` (crash leftovers)."""
        ...

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...
    def get_bytes(self, key: str) -> bytes | None: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete(self, keys: Sequence[str]) -> None: ...


def _directly_in(directory: str, key: str) -> bool:
    """`key` is a file of `directory` itself, not of a sub-folder (hourly under daily)."""
    rest = key.removeprefix(directory.rstrip("/") + "/")
    return rest != key and "/" not in rest


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
        # Files go up in parts of this size (a smaller file is one part), `concurrency`
        # at once: at most that many parts are in memory.
        self._part_bytes = multipart_bytes
        self._concurrency = concurrency

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

    def stage(self, path: Path, key: str, content_type: str) -> Staged:
        # A multipart upload that is not completed is invisible to every reader
        # (GET, LIST, HEAD), and completing it later is a metadata operation: the
        # bytes are written once, at their final key.
        try:
            created = self._client.create_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                ContentType=content_type,
                # Explicit, so every part carries the same checksum type that
                # CompleteMultipartUpload is then given back (what s3transfer does).
                ChecksumAlgorithm="CRC32",
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, f"stage {key} in") from None
        staged = Staged(key, created["UploadId"])
        try:
            parts = self._upload_parts(path, staged)
        except BaseException:
            # Cleanup must never hide the error that made it necessary.
            with contextlib.suppress(Exception):
                self.abort(staged)
            raise
        return Staged(key, staged.handle, parts)

    def _upload_parts(self, path: Path, staged: Staged) -> tuple[Part, ...]:
        size = path.stat().st_size
        # Parts grow for a file that would need more than S3's 10,000.
        part_bytes = max(self._part_bytes, math.ceil(size / MAX_PARTS))
        count = max(1, math.ceil(size / part_bytes))  # an empty file is one empty part
        numbers = range(1, count + 1)
        if self._concurrency == 1 or count == 1:
            return tuple(self._upload_part(path, staged, n, part_bytes) for n in numbers)
        pool = ThreadPoolExecutor(min(self._concurrency, count), thread_name_prefix="s3-part")
        # Each task reads its own part when it runs, so memory holds at most
        # `concurrency` parts however many are queued.
        futures: list[Future[Part]] = [
            pool.submit(self._upload_part, path, staged, n, part_bytes) for n in numbers
        ]
        try:
            return tuple(f.result() for f in futures)
        finally:
            # On a failure, parts not yet started are not sent (the upload is aborted).
            pool.shutdown(wait=True, cancel_futures=True)

    def _upload_part(self, path: Path, staged: Staged, number: int, part_bytes: int) -> Part:
        with path.open("rb") as file:
            file.seek((number - 1) * part_bytes)
            body = file.read(part_bytes)
        try:
            answer = self._client.upload_part(
                Bucket=self.bucket,
                Key=staged.key,
                UploadId=staged.handle,
                PartNumber=number,
                Body=body,
                ChecksumAlgorithm="CRC32",
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, f"upload part {number} of {staged.key} to") from None
        return Part(number, answer["ETag"], answer.get("ChecksumCRC32"))

    def promote(self, staged: Staged) -> None:
        parts: list[CompletedPartTypeDef] = []
        for part in staged.parts:
            entry: CompletedPartTypeDef = {"PartNumber": part.number, "ETag": part.etag}
            if part.crc32 is not None:
                entry["ChecksumCRC32"] = part.crc32
            parts.append(entry)
        try:
            self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=staged.key,
                UploadId=staged.handle,
                MultipartUpload={"Parts": parts},
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, f"complete {staged.key} in") from None

    def abort(self, staged: Staged) -> None:
        try:
            self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=staged.key, UploadId=staged.handle
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
                return
            raise self._error(exc, f"abort {staged.key} in") from None
        except BotoCoreError as exc:
            raise self._error(exc, f"abort {staged.key} in") from None

    def staged_under(self, directory: str) -> list[Staged]:
        found: list[Staged] = []
        try:
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=directory.rstrip("/") + "/"
            )
            for page in pages:
                found.extend(
                    Staged(u["Key"], u["UploadId"])
                    for u in page.get("Uploads", [])
                    if _directly_in(directory, u["Key"])
                )
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, f"list uploads under {directory} in") from None
        return found

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
    """A folder that behaves like a bucket: files appear whole (write aside, then rename).

    A staged file is `_staging/{key}.{token}` under the folder: on the same
    filesystem as its key, so promotion is one atomic rename.
    """

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

    def stage(self, path: Path, key: str, content_type: str) -> Staged:
        # The token keeps two attempts of one key apart; it has no `.` or `/`.
        handle = f"{STAGING}/{key}.{uuid.uuid4().hex}"
        self._atomic_write(self._path(handle), path)
        return Staged(key, handle)

    def promote(self, staged: Staged) -> None:
        destination = self._path(staged.key)
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._path(staged.handle), destination)  # atomic on one filesystem
        except OSError as exc:
            raise StoreError(
                f"promote {staged.key} failed: {exc.strerror}", permanent=False
            ) from None
        self.delete([staged.handle])  # only to remove the emptied `_staging/` folders

    def abort(self, staged: Staged) -> None:
        self.delete([staged.handle])

    def staged_under(self, directory: str) -> list[Staged]:
        staging = f"{STAGING}/{directory.rstrip('/')}"
        return [
            Staged(f"{directory.rstrip('/')}/{k.rsplit('/', 1)[1].rsplit('.', 1)[0]}", k)
            for k in self.list(staging + "/")
            if _directly_in(staging, k)
        ]

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self._atomic_write(self._path(key), data)

    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

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
