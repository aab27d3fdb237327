"""Export test machinery: raw rows at chosen ingestion times, buckets, a failing S3 proxy."""

from __future__ import annotations

import contextlib
import http.client
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from sqlalchemy import Engine, text

from lytics.exports.stores import S3Credentials

CREDENTIALS = S3Credentials("AKIDEXPORTTEST", "export-test-secret-value-0123456789")

INSERT_EVENTS = """
INSERT INTO raw.events (project_id, message_id, type, event, anonymous_id, user_id, timestamp,
                        received_at, url, path, source, payload)
SELECT :project_id, :prefix || '-' || g, 'track', 'Clicked ' || (g % 7), 'anon-' || (g % 50),
       CASE WHEN g % 3 = 0 THEN NULL ELSE 'user-' || g END,
       CAST(:event_time AS timestamptz) + g * interval '1 millisecond',
       CAST(:received_at AS timestamptz) + (g % 3000) * interval '1 second',
       'https://example.com/p/' || g || repeat('x', :pad), '/p/' || g, 'native',
       jsonb_build_object('n', g, 'text', 'quote " comma , newline' || chr(10) || 'end',
                          'nested', jsonb_build_object('ok', true))
FROM generate_series(1, :rows) AS g
"""


def insert_events(
    engine: Engine,
    project_id: int,
    rows: int,
    received_at: datetime,
    *,
    event_time: datetime | None = None,
    pad: int = 0,
) -> None:
    """`rows` events received within 50 minutes after `received_at` (ids in order)."""
    with engine.begin() as conn:
        conn.execute(
            text(INSERT_EVENTS),
            {
                "project_id": project_id,
                "prefix": uuid.uuid4().hex[:8],
                "rows": rows,
                "received_at": received_at,
                "event_time": event_time or received_at,
                "pad": pad,
            },
        )


def insert_metrics(engine: Engine, project_id: int, rows: int, received_at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.metrics (project_id, source, metric_name, metric_value,"
                " metric_date, meta, received_at)"
                " SELECT :p, 'stripe', 'mrr', g * 1.5, CAST(:at AS timestamptz)::date,"
                " jsonb_build_object('g', g), CAST(:at AS timestamptz) + g * interval '1 second'"
                " FROM generate_series(1, :rows) AS g"
            ),
            {"p": project_id, "rows": rows, "at": received_at},
        )


def s3_client(endpoint: str, credentials: S3Credentials = CREDENTIALS) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        region_name="us-east-1",
    )


def new_bucket(endpoint: str) -> str:
    name = f"exp-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def list_keys(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    client = s3_client(endpoint)
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(keys)


def list_uploads(endpoint: str, bucket: str) -> list[tuple[str, str]]:
    """Multipart uploads begun and neither completed nor aborted: (key, upload id)."""
    answer = s3_client(endpoint).list_multipart_uploads(Bucket=bucket)
    return sorted((u["Key"], u["UploadId"]) for u in answer.get("Uploads", []))


class FailingProxy:
    """An HTTP proxy in front of the S3 server that starts failing after N uploads.

    Requests go over real sockets to the real server; only the answers to data
    uploads (PUT with a body to a `part-` key, including multipart parts) after
    the first `healthy_uploads` are replaced with 503 until `heal()`.
    """

    def __init__(self, upstream: str, healthy_uploads: int) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.healthy_uploads = healthy_uploads
        self.uploads = 0
        self.refused = 0
        self.failing = True
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.command == "PUT" and "/part-" in self.path and body:
                    with proxy._lock:
                        proxy.uploads += 1
                        refuse = proxy.failing and proxy.uploads > proxy.healthy_uploads
                        proxy.refused += refuse
                    if refuse:
                        payload = (
                            b"<Error><Code>ServiceUnavailable</Code>"
                            b"<Message>injected</Message></Error>"
                        )
                        self.send_response(503)
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def heal(self) -> None:
        self.failing = False

    @contextlib.contextmanager
    def running(self) -> Iterator[FailingProxy]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
