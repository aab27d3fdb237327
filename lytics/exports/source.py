"""Rows of one partition, streamed out of Postgres in bounded memory.

`COPY (SELECT …) TO STDOUT (FORMAT csv)` sends the rows as one stream with no
per-row protocol overhead, and Arrow's C++ CSV reader turns it into typed
record batches block by block: memory holds one block (plus the batch it
becomes), whatever the partition's size. This is also the fastest path out of
Postgres we measured (see docs/exports.md, benchmark).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

from lytics.exports.datasets import Dataset
from lytics.exports.windows import Window
from lytics.warehouse.urls import libpq_dsn

MB = 1024 * 1024


class _CopyStream(io.RawIOBase):
    """A read-only file over a COPY's chunks, as Arrow's reader wants one."""

    def __init__(self, chunks: Iterator[Any]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # Fill the whole buffer: COPY yields one row per chunk, and Arrow takes each read
        # as a block, so short reads would make one-row record batches.
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view):
            if not self._pending:
                try:
                    self._pending = memoryview(next(self._chunks)).cast("B")
                except StopIteration:
                    break
            size = min(len(view) - filled, len(self._pending))
            view[filled : filled + size] = self._pending[:size]
            self._pending = self._pending[size:]
            filled += size
        return filled


def connect(database_url: str) -> psycopg.Connection[Any]:
    # UTC makes timestamptz text end in "+00", which Arrow parses as UTC instants.
    conn = psycopg.connect(libpq_dsn(database_url), prepare_threshold=None, autocommit=True)
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


def copy_statement(dataset: Dataset, project_id: int, window: Window) -> sql.Composed:
    """The COPY of one partition, with its parameters bound as literals (COPY takes none)."""
    query = sql.SQL(dataset.select_sql()).format(
        project_id=sql.Literal(project_id),
        start=sql.Literal(window.start),
        end=sql.Literal(window.end),
    )
    return sql.SQL("COPY ({}) TO STDOUT (FORMAT csv)").format(query)


def _read_options(dataset: Dataset, block_bytes: int) -> tuple[Any, Any, Any]:
    schema = dataset.schema
    return (
        # One thread: the COPY is read on the calling thread, as psycopg expects.
        pacsv.ReadOptions(column_names=schema.names, block_size=block_bytes, use_threads=False),
        # URLs and user agents may hold newlines inside quoted values.
        pacsv.ParseOptions(newlines_in_values=True),
        pacsv.ConvertOptions(
            column_types=schema,
            # COPY writes NULL as an empty unquoted field and '' as "": keep them apart.
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )


@contextmanager
def stream_batches(
    conn: psycopg.Connection[Any],
    dataset: Dataset,
    project_id: int,
    window: Window,
    *,
    block_bytes: int = 4 * MB,
) -> Iterator[Iterator[pa.RecordBatch]]:
    """Record batches of the partition, each cast to the dataset's fixed schema."""
    schema = dataset.schema
    with conn.cursor() as cur, cur.copy(copy_statement(dataset, project_id, window)) as copy:
        stream = _CopyStream(iter(copy))
        read, parse, convert = _read_options(dataset, block_bytes)

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                reader = pacsv.open_csv(
                    stream, read_options=read, parse_options=parse, convert_options=convert
                )
            except pa.ArrowInvalid as exc:
                if "Empty CSV file" in str(exc):
                    return  # no rows in the window
                raise
            for batch in reader:
                if batch.num_rows:
                    yield batch.cast(schema)

        yield batches()
