"""`POST /v1/metrics/ingest`: KPI metrics pushed by integrations (seed S0)."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Request, Response, post

from lytics.settings import Settings
from lytics_ingest_api.admission import admit
from lytics_ingest_api.auth import require_secret_key
from lytics_ingest_api.body import decode_json, read_body
from lytics_ingest_api.errors import ApiError, bad_request
from lytics_ingest_api.jsontext import MAX_EVENT_DEPTH, UnstorableJsonError, jsonb_text
from lytics_ingest_api.observability import note
from lytics_ingest_api.openapi_docs import METRICS_BODY, json_body

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


def _name(item: dict[str, Any], key: str, index: int) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME or "\x00" in value:
        raise bad_request(
            f"metrics[{index}].{key} must be a non-empty string of at most {MAX_NAME} characters",
            field=f"metrics[{index}].{key}",
        )
    return value


def _value(item: dict[str, Any], index: int) -> Decimal:
    value = item.get("metric_value")
    field = f"metrics[{index}].metric_value"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise bad_request(f"{field} must be a number", field=field)
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise bad_request(f"{field} must be a number", field=field) from exc
    if not number.is_finite() or (isinstance(value, float) and not math.isfinite(value)):
        raise bad_request(f"{field} must be finite", field=field)
    if number and abs(number.adjusted()) > MAX_EXPONENT:
        raise bad_request(f"{field} is out of range (|exponent| > {MAX_EXPONENT})", field=field)
    return number


def _date(item: dict[str, Any], index: int) -> date:
    field = f"metrics[{index}].metric_date"
    value = item.get("metric_date")
    if not isinstance(value, str):
        raise bad_request(f"{field} must be a date (YYYY-MM-DD)", field=field)
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise bad_request(f"{field} must be a date (YYYY-MM-DD)", field=field) from exc


@post(
    "/v1/metrics/ingest",
    operation_id="metrics_ingest",
    summary="Push daily KPI metrics; the newest value per (source, name, date) wins",
    tags=["metrics"],
    operation_class=json_body(METRICS_BODY),
    status_code=200,
)
async def metrics_ingest(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    principal = await require_secret_key(request)
    headers = admit(request, principal)
    settings: Settings = request.app.state.settings
    data = await read_body(request, max(MAX_BODY, settings.max_batch_bytes))
    # The bare array and {"metrics": [...]} name their fields alike: metrics[3].meta.x.
    body = decode_json(data, "metrics" if data.lstrip()[:1] == b"[" else "")
    items = body.get("metrics") if isinstance(body, dict) else body
    if not isinstance(items, list) or not items:
        raise bad_request("send a non-empty array of metrics", field="metrics")
    if len(items) > MAX_METRICS:
        raise ApiError(413, "too_large", f"at most {MAX_METRICS} metrics per request")
    columns: list[list[Any]] = [[], [], [], [], []]
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad_request(f"metrics[{index}] must be an object", field=f"metrics[{index}]")
        meta = item.get("meta", {})
        meta = {} if meta is None else meta
        if not isinstance(meta, dict):
            raise bad_request(
                f"metrics[{index}].meta must be an object", field=f"metrics[{index}].meta"
            )
        columns[0].append(_name(item, "source", index))
        columns[1].append(_name(item, "metric_name", index))
        columns[2].append(_value(item, index))
        columns[3].append(_date(item, index))
        try:
            columns[4].append(jsonb_text(meta, MAX_EVENT_DEPTH, f"metrics[{index}].meta"))
        except UnstorableJsonError as exc:
            raise bad_request(exc.message, field=exc.field) from None
    # All or nothing: one transaction, answered after the commit.
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await conn.execute(INSERT_METRICS, [principal.project_id, *columns])
    note(request.scope, metrics=len(items))
    return Response({"success": True, "stored": len(items)}, status_code=200, headers=headers)


ROUTES = [metrics_ingest]
