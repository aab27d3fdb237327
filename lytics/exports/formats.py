"""File formats, and data files rolled at a size limit.

Parquet (zstd) is the default: columnar, typed, read by every warehouse.
JSON Lines and CSV are gzip-compressed. Each file is written to a local spool
file and handed over as soon as it is closed, so at most one file per
partition is on disk and one record batch is in memory.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lytics.exports.datasets import Dataset

FormatName = Literal["parquet", "jsonl", "csv"]
FORMATS: tuple[FormatName, ...] = ("parquet", "jsonl", "csv")
EXTENSIONS: dict[str, str] = {"parquet": "parquet", "jsonl": "jsonl.gz", "csv": "csv.gz"}
CONTENT_TYPES: dict[str, str] = {
    "parquet": "application/vnd.apache.parquet",
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
}
COMPRESSION: dict[str, str] = {"parquet": "zstd", "jsonl": "gzip", "csv": "gzip"}
HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class PartFile:
    """A closed data file, ready to upload."""

    name: str  # part-00000.parquet
    path: Path
    rows: int
    bytes: int
    sha256: str


class _Writer(Protocol):
    def write(self, batch: pa.RecordBatch) -> None: ...
    def close(self) -> None: ...


class _ParquetWriter:
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        # Statistics and dictionaries stay on (Parquet's defaults): they make reads cheap.
        self._writer = pq.ParquetWriter(str(path), schema, compression="zstd")

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()


class _CsvWriter:
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self._stream = pa.CompressedOutputStream(str(path), "gzip")
        self._writer = pacsv.CSVWriter(self._stream, schema)

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)
        # A sync flush per batch puts the compressed bytes on disk, so the file's size
        # is known for rolling; with multi-megabyte batches it costs a few bytes.
        self._stream.flush()

    def close(self) -> None:
        self._writer.close()
        self._stream.close()


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


class _JsonlWriter:
    """One JSON object per line; JSON columns are embedded as objects, not strings."""

    def __init__(self, path: Path, schema: pa.Schema, json_columns: frozenset[str]) -> None:
        self._raw = path.open("wb")
        # No file name and a zero mtime in the gzip header: the same rows give the same
        # bytes (and so the same ETag) whenever and under whatever spool name they are written.
        self._file = gzip.GzipFile(
            filename="", mode="wb", compresslevel=6, fileobj=self._raw, mtime=0
        )
        self._json = [name for name in schema.names if name in json_columns]

    def write(self, batch: pa.RecordBatch) -> None:
        plain = batch.drop_columns(self._json) if self._json else batch
        raw = {name: batch.column(name).to_pylist() for name in self._json}
        lines = []
        for i, row in enumerate(plain.to_pylist()):
            text = json.dumps(row, default=_json_default, ensure_ascii=False, separators=(",", ":"))
            # The stored text is valid JSON already (Postgres jsonb): splice it, don't re-parse.
            extra = "".join(
                f',"{name}":{values[i] if values[i] is not None else "null"}'
                for name, values in raw.items()
            )
            lines.append(text[:-1] + extra + "}\n")
        self._file.write("".join(lines).encode())
        self._file.flush()  # as for CSV: the size on disk must be known to roll

    def close(self) -> None:
        self._file.close()  # GzipFile does not close a file object it was given
        self._raw.close()


def _open(fmt: str, path: Path, dataset: Dataset) -> _Writer:
    if fmt == "parquet":
        return _ParquetWriter(path, dataset.schema)
    if fmt == "csv":
        return _CsvWriter(path, dataset.schema)
    if fmt == "jsonl":
        return _JsonlWriter(path, dataset.schema, dataset.json_columns)
    raise ValueError(f"unknown format {fmt!r}: choose from {', '.join(FORMATS)}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def part_name(index: int, fmt: str) -> str:
    return f"part-{index:05d}.{EXTENSIONS[fmt]}"


def write_parts(
    batches: Iterable[pa.RecordBatch],
    fmt: str,
    dataset: Dataset,
    spool: Path,
    *,
    roll_bytes: int,
) -> Iterator[PartFile]:
    """Write batches into files of about `roll_bytes` each, yielding each file once closed.

    The consumer should upload and delete each file before asking for the next,
    which keeps local disk use to one file. No rows, no files.
    """
    spool.mkdir(parents=True, exist_ok=True)
    index, writer, path, rows = 0, None, spool / part_name(0, fmt), 0
    for batch in batches:
        if writer is None:
            path = spool / part_name(index, fmt)
            writer, rows = _open(fmt, path, dataset), 0
        writer.write(batch)
        rows += batch.num_rows
        # Compressed bytes on disk so far (buffers not yet flushed are at most a block).
        if os.path.getsize(path) >= roll_bytes:
            writer.close()
            yield PartFile(part_name(index, fmt), path, rows, path.stat().st_size, sha256_of(path))
            index, writer = index + 1, None
    if writer is not None:
        writer.close()
        yield PartFile(part_name(index, fmt), path, rows, path.stat().st_size, sha256_of(path))
