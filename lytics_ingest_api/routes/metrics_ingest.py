"""`POST /v1/metrics/ingest`: KPI metrics pushed by integrations (seed S0)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post
from msgspec import Meta

from lytics.settings import Settings
from lytics_ingest_api.admission import admit
from lytics_ingest_api.auth import require_secret_key
from lytics_ingest_api.body import decode_json, read_body
from lytics_ingest_api.errors import ApiError, bad_request
from lytics_ingest_api.events.segment_shape import invalid_part
from lytics_ingest_api.jsontext import MAX_EVENT_DEPTH, UnstorableJsonError, jsonb_text
from lytics_ingest_api.observability import note
from lytics_ingest_api.openapi_docs import (
    SECRET_KEY,
    WRITE_ERRORS,
    json_body,
    responses,
    struct_body,
)
from lytics_ingest_api.response_bodies import MetricsAnswer

MAX_METRICS = 1000
MAX_NAME = 200
MAX_BODY = 1024 * 1024
# Far inside what Postgres numeric stores (10^131072 .. 10^-16383), far beyond any KPI.
MAX_EXPONENT = 1000

INSERT_METRICS = """
INSERT INTO raw.metrics (project_id, source, metric_name, metric_value, metric_date, meta)
SELECT %s, source, metric_name, metric_value, metric_date, meta::jsonb
FROM unnest(%s::text[], %s::text[], %s::numeric[], %s::date[], %s::text[])
    AS t(source, metric_name, metric_value, metric_date, meta)
"""


Name = Annotated[str, Meta(min_length=1, max_length=MAX_NAME, pattern=r"\S")]


class Metric(msgspec.Struct):
    """One day's value of one KPI from one source."""

    source: Name
    metric_name: Name
    metric_value: Annotated[Decimal, Meta(description="a number, or a string holding one")]
    metric_date: Annotated[date, Meta(description="YYYY-MM-DD")]
    meta: dict[str, Any] | None = None


class MetricsBody(msgspec.Struct):
    """The request body: `{"metrics": [...]}`, or the bare array of metrics."""

    metrics: Annotated[list[Metric], Meta(min_length=1, max_length=MAX_METRICS)]


def _invalid(error: msgspec.ValidationError) -> ApiError:
    field, message = invalid_part(error, "metrics")
    if field.startswith("["):  # the bare array: its items are metrics[i] too
        field, message = f"metrics{field}", f"metrics{message}"
    return bad_request(message, field=field)


def _metrics(body: Any) -> list[Metric]:
    items = body.get("metrics") if isinstance(body, dict) else body
    if isinstance(items, list) and len(items) > MAX_METRICS:
        raise ApiError(413, "too_large", f"at most {MAX_METRICS} metrics per request")
    try:
        if isinstance(body, dict):
            return msgspec.convert(body, MetricsBody).metrics
        metrics: list[Metric] = msgspec.convert(body, Annotated[list[Metric], Meta(min_length=1)])
        return metrics
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None


def _value(metric: Metric, index: int) -> Decimal:
    number = metric.metric_value
    field = f"metrics[{index}].metric_value"
    if not number.is_finite():
        raise bad_request(f"{field} must be finite", field=field)
    if number and abs(number.adjusted()) > MAX_EXPONENT:
        raise bad_request(f"{field} is out of range (|exponent| > {MAX_EXPONENT})", field=field)
    return number


def _text(value: str, field: str) -> str:
    if "\x00" in value:
        raise bad_request(f"{field} contains a NUL (U+0000)", field=field)
    return value


@post(
    "/v1/metrics/ingest",
    operation_id="metrics_ingest",
    summary="Push daily KPI metrics; the newest value per (source, name, date) wins",
    tags=["metrics"],
    operation_class=json_body(struct_body(MetricsBody | list[Metric])),
    status_code=200,
    security=SECRET_KEY,
    responses=responses(MetricsAnswer, *WRITE_ERRORS),
)
async def metrics_ingest(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    principal = await require_secret_key(request)
    headers = await admit(request, principal)
    settings: Settings = request.app.state.settings
    data = await read_body(request, max(MAX_BODY, settings.max_batch_bytes))
    # The bare array and {"metrics": [...]} name their fields alike: metrics[3].meta.x.
    body = decode_json(data, "metrics" if data.lstrip()[:1] == b"[" else "")
    items = _metrics(body)
    columns: list[list[Any]] = [[], [], [], [], []]
    for index, item in enumerate(items):
        columns[0].append(_text(item.source, f"metrics[{index}].source"))
        columns[1].append(_text(item.metric_name, f"metrics[{index}].metric_name"))
        columns[2].append(_value(item, index))
        columns[3].append(item.metric_date)
        try:
            meta = jsonb_text(item.meta or {}, MAX_EVENT_DEPTH, f"metrics[{index}].meta")
        except UnstorableJsonError as exc:
            raise bad_request(exc.message, field=exc.field) from None
        columns[4].append(meta)
    # All or nothing: one transaction, answered after the commit.
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await conn.execute(INSERT_METRICS, [principal.project_id, *columns])
    note(request.scope, metrics=len(items))
    return Response({"success": True, "stored": len(items)}, status_code=200, headers=headers)


ROUTES = [metrics_ingest]
