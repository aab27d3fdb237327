"""The OpenAPI document's shared parts: key schemes, error answers, request bodies, docs page.

Every error answer is `errors.ErrorBody`, the struct the handlers send. Request bodies
of the Segment endpoints are generated from the msgspec structs that decode them
(`events.segment_shape`); the intake handlers read their bodies themselves (gzip,
text/plain, per-event validation), so the schema is attached with
`operation_class=json_body(...)` rather than inferred by Litestar. Bodies no struct
decodes yet (the beacon, metrics, replay and webhook payloads) are declared here as
JSON Schema. The fuzz test (tests/test_openapi_fuzz.py) drives the API from this document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import msgspec
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityRequirement,
    SecurityScheme,
)
from litestar.router import Router
from litestar.static_files import create_static_files_router

from lytics_ingest_api.errors import ErrorBody

DOCS_PATH = "/schema"
ASSETS_PATH = f"{DOCS_PATH}/assets"
REF_PREFIX = "#/components/schemas/"

# --- who may call: the three kinds of key (lytics_ingest_api.auth) -----------------------

SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    "writeKeyBasic": SecurityScheme(
        type="http",
        scheme="basic",
        description="Segment-style: the project's write key as the username, empty password.",
    ),
    "writeKeyHeader": SecurityScheme(
        type="apiKey",
        name="X-API-Key",
        security_scheme_in="header",
        description="The project's write key in `X-API-Key`.",
    ),
    "writeKeyQuery": SecurityScheme(
        type="apiKey",
        name="writeKey",
        security_scheme_in="query",
        description="The write key as `?writeKey=`, for beacons and pixels that cannot "
        "set headers (a `writeKey` field in a JSON body works too).",
    ),
    "secretKeyBearer": SecurityScheme(
        type="http",
        scheme="bearer",
        description="A secret API key of the project: `Authorization: Bearer <key>`.",
    ),
}

# Alternatives: any one of them authenticates.
WRITE_KEY: list[SecurityRequirement] = [
    {"writeKeyBasic": []},
    {"writeKeyHeader": []},
    {"writeKeyQuery": []},
]
# Webhooks (a signature over the body), the unsubscribe link (a signed token) and the
# probes declare none.
SECRET_KEY: list[SecurityRequirement] = [{"secretKeyBearer": []}]

# --- what can go wrong ---------------------------------------------------------------------

_ERRORS = {
    400: "Invalid input; `field` names the part at fault",
    401: "Missing, unknown or revoked key (or a webhook signature that does not verify)",
    403: "The key's project does not accept this origin, or names another project",
    404: "Nothing to answer with",
    409: "The address has unsubscribed or bounced",
    413: "The body (decompressed) or the batch is too large",
    415: "A content type or encoding the API cannot decode",
    422: "Well-formed input that the database or the mail provider refuses",
    429: "Over the key's rate (see `Retry-After` and `RateLimit-*`)",
    502: "The mail provider failed",
    503: "The database (or Dagster, or the mail configuration) is unavailable, or a read "
    "ran past the statement timeout (`error: timeout`); retry after `Retry-After`",
}

# The statuses every caller of a kind can meet, whatever the operation.
WRITE_ERRORS = (400, 401, 403, 413, 415, 422, 429, 503)
SECRET_ERRORS = (400, 401, 403, 429, 503)


def responses(
    ok: Any = None, *statuses: int, status: int = 200, **alternatives: Any
) -> dict[int, ResponseSpec]:
    """`ResponseSpec`s: `ok` for `status`, `ErrorBody` for each error status (or the type
    named `s<status>=` where an answer is not an error body)."""
    specs: dict[int, ResponseSpec] = {}
    if ok is not None:
        specs[status] = ResponseSpec(ok, description="Success", generate_examples=False)
    for code in statuses:
        specs[code] = ResponseSpec(
            alternatives.get(f"s{code}", ErrorBody),
            description=_ERRORS[code],
            generate_examples=False,
        )
    return specs


# --- request bodies ------------------------------------------------------------------------


def to_schema(spec: dict[str, Any]) -> Schema | Reference:
    """A JSON Schema dict (msgspec's or hand-written) → Litestar's spec objects."""
    if "$ref" in spec:
        return Reference(ref=spec["$ref"])
    kwargs: dict[str, Any] = {}
    for key, raw in spec.items():
        value: Any = raw
        if key == "type":
            value = [OpenAPIType(v) for v in raw] if isinstance(raw, list) else OpenAPIType(raw)
        elif key == "properties":
            value = {k: to_schema(v) for k, v in raw.items()}
        elif key == "items" or (key == "additionalProperties" and isinstance(raw, dict)):
            value = to_schema(raw)
        elif key in ("oneOf", "anyOf", "allOf"):
            value = [to_schema(v) for v in raw]
        kwargs[re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()] = value
    return Schema(**kwargs)


def _inline(schema: Any, components: dict[str, Any], seen: frozenset[str]) -> Any:
    """`schema` with each component reference replaced by the component itself: Litestar
    writes the document's components from the types its handlers declare, so a request
    body declared here must carry its own definitions."""
    if isinstance(schema, list):
        return [_inline(item, components, seen) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(REF_PREFIX):
        name = ref.removeprefix(REF_PREFIX)
        if name in seen:  # a type that contains itself: any object, past the first level
            return {"type": "object"}
        return _inline(components[name], components, seen | {name})
    return {key: _inline(value, components, seen) for key, value in schema.items()}


def struct_body(body_type: Any, *, raw_items: dict[str, Any] | None = None) -> Schema | Reference:
    """The schema of the msgspec type that decodes a request body: the same declaration
    validates the body and documents it. `raw_items` names list fields of `msgspec.Raw`
    items ("Struct.field") decoded later, one by one, as the given type."""
    extra = list((raw_items or {}).values())
    schemas, components = msgspec.json.schema_components(
        [body_type, *extra], ref_template=REF_PREFIX + "{name}"
    )
    for field_path, item_type in (raw_items or {}).items():
        struct, field = field_path.split(".")
        item_schema = schemas[1 + extra.index(item_type)]
        components[struct]["properties"][field]["items"] = item_schema
    return to_schema(_inline(schemas[0], components, frozenset()))


def json_body(spec: dict[str, Any] | Schema | Reference, description: str | None = None) -> Any:
    """An `operation_class` whose request body is `spec`, as JSON or as text/plain JSON."""
    schema = spec if isinstance(spec, Schema | Reference) else to_schema(spec)

    @dataclass
    class WithJsonBody(Operation):
        def __post_init__(self) -> None:
            content = {
                media: OpenAPIMediaType(schema=schema)
                for media in ("application/json", "text/plain")
            }
            self.request_body = RequestBody(content=content, required=True, description=description)

    return WithJsonBody


WEBHOOK_BODY: dict[str, Any] = {
    "type": "object",
    "description": "The sender's payload; verified on the raw bytes before parsing.",
}

# --- the document and its page ---------------------------------------------------------------

# Swagger UI's files from the swagger-ui-py package, served by the API itself: the page
# works on a network without internet access.
_SWAGGER_FILES = Path(str(files("swagger_ui") / "static"))
SWAGGER_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")


def docs_assets_router() -> Router:
    return create_static_files_router(
        path=ASSETS_PATH, directories=[_SWAGGER_FILES], include_in_schema=False
    )


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Lytics ingest API",
        version="0.1.0",
        path=DOCS_PATH,
        components=Components(security_schemes=SECURITY_SCHEMES),
        render_plugins=[
            SwaggerRenderPlugin(
                css_url=f"{ASSETS_PATH}/swagger-ui.css",
                js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
                standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' href='{ASSETS_PATH}/favicon-32x32.png'>",
            )
        ],
    )
