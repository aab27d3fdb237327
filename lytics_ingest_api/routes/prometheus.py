"""`GET /metrics` in the Prometheus text format."""

from __future__ import annotations

from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


@get("/metrics", operation_id="prometheus_metrics", tags=["operations"], include_in_schema=False)
async def prometheus_metrics() -> Response[bytes]:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


ROUTES = [prometheus_metrics]
