"""What every answer carries, what the OpenAPI document declares, and the offline docs page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from lytics.settings import Settings
from tests.support.ingest import Ingest, served_ingest

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.fixture
def api(settings: Settings, engine: Engine) -> Iterator[Ingest]:
    limited = settings.model_copy(update={"rate_limit_per_second": 0.2, "rate_limit_burst": 5})
    with served_ingest(limited, engine) as ingest:
        yield ingest


def _assert_standard_headers(headers: Any, request_id: str) -> None:
    assert headers["x-request-id"] == request_id
    for name, value in SECURITY_HEADERS.items():
        assert headers.get_list(name) == [value], name
    assert "default-src 'none'" in headers["content-security-policy"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/no/such/path", 404),
        ("POST", "/v1/nothing-here", 404),
        ("DELETE", "/v1/events/recent", 405),
        ("PUT", "/health/live", 405),
    ],
)
def test_unrouted_answers_carry_request_id_and_security_headers(
    api: Ingest, method: str, path: str, status: int
) -> None:
    answer = httpx.request(method, f"{api.base}{path}", headers={"X-Request-ID": "r-404"})
    assert answer.status_code == status
    _assert_standard_headers(answer.headers, "r-404")
    assert set(answer.json()) <= {"error", "message", "field"}


def test_routed_answers_carry_the_headers_once(api: Ingest) -> None:
    answer = api.get("/v1/stats", headers={**api.bearer(), "X-Request-ID": "r-1"})
    assert answer.status_code == 200
    _assert_standard_headers(answer.headers, "r-1")
    assert answer.headers.get_list("x-request-id") == ["r-1"]


@pytest.mark.parametrize(
    "path",
    ["/v1/stats", "/v1/events/recent", "/v1/github/user", "/v1/exports/config"],
)
def test_admitted_secret_key_reads_carry_ratelimit_headers(api: Ingest, path: str) -> None:
    first = api.get(path, headers=api.bearer())
    second = api.get(path, headers=api.bearer())
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.headers["ratelimit-limit"] == "5"
    assert int(second.headers["ratelimit-remaining"]) < int(first.headers["ratelimit-remaining"])
    assert first.headers.get_list("ratelimit-limit") == ["5"]


def test_secret_key_routes_refuse_a_write_key_with_the_error_body(api: Ingest) -> None:
    answer = api.get("/v1/digest/status", headers=api.bearer(api.write_key))
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert "ratelimit-limit" not in answer.headers


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/messages?q=a%00b", "q"),
        ("/v1/messages?source=x%00", "source"),
        ("/v1/exports/status?dataset=events&x%00=1", "x\x00"),
        ("/v1/dashboard/tiles?project=s%00", "project"),
    ],
)
def test_a_nul_in_a_query_parameter_is_a_400_naming_it(api: Ingest, path: str, field: str) -> None:
    answer = api.get(path, headers=api.bearer())
    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert answer.json()["error"] == "invalid"


def test_the_guard_answers_429_over_the_rate(api: Ingest) -> None:
    answers = [api.get("/v1/stats", headers=api.bearer()) for _ in range(10)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].json()["error"] == "rate_limited"
    assert int(limited[0].headers["retry-after"]) >= 1


def test_document_declares_key_schemes_and_the_error_body(api: Ingest) -> None:
    document = api.get("/schema/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["writeKeyBasic"] == {
        "type": "http",
        "scheme": "basic",
        "description": schemes["writeKeyBasic"]["description"],
    }
    assert (schemes["writeKeyHeader"]["in"], schemes["writeKeyHeader"]["name"]) == (
        "header",
        "X-API-Key",
    )
    assert schemes["secretKeyBearer"]["scheme"] == "bearer"
    error = document["components"]["schemas"]["ErrorBody"]
    assert set(error["properties"]) == {"error", "message", "field"}
    assert set(error["required"]) == {"error", "message"}
    assert "ValidationException" not in str(document)

    paths = document["paths"]
    assert paths["/v1/track"]["post"]["security"][0] == {"writeKeyBasic": []}
    assert paths["/v1/exports/status"]["get"]["security"] == [{"secretKeyBearer": []}]
    assert "security" not in paths["/v1/webhooks/github"]["post"]
    track = paths["/v1/track"]["post"]["responses"]
    assert {"400", "401", "403", "413", "415", "429", "503"} <= set(track)
    assert track["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    # Request bodies come from the structs that decode them, not from a copy.
    body = paths["/v1/track"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["title"] == "SegmentEvent"
    assert body["properties"]["event"]["anyOf"][0]["maxLength"] == 500
    assert "$ref" in str(paths["/v1/stats"]["get"]["responses"]["200"])


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def test_docs_page_and_all_its_assets_are_served_by_the_api(api: Ingest) -> None:
    page = api.get("/schema/swagger")
    assert page.status_code == 200
    assert not re.search(r"https?://", page.text)  # nothing from a CDN, or anywhere else
    parser = _Assets()
    parser.feed(page.text)
    assert len(parser.urls) >= 3
    for url in parser.urls:
        asset = api.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 0
    script = api.get("/schema/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in script.text


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_reference_in_the_document_resolves_and_bodies_come_from_the_structs(
    api: Ingest,
) -> None:
    document = api.get("/schema/openapi.json").json()
    components = document["components"]["schemas"]
    dangling = {
        ref
        for ref in _refs(document)
        if ref.removeprefix("#/components/schemas/") not in components
    }
    assert not dangling
    batch = document["paths"]["/v1/batch"]["post"]["requestBody"]["content"]["application/json"]
    event = batch["schema"]["properties"]["batch"]["items"]
    # SegmentEvent's own constraints, the ones the decoder enforces.
    assert event["properties"]["event"]["anyOf"][0]["maxLength"] == 500
    assert batch["schema"]["properties"]["batch"]["maxItems"] > 0
    metrics = document["paths"]["/v1/metrics/ingest"]["post"]["requestBody"]["content"]
    assert "anyOf" in metrics["application/json"]["schema"]  # an object or a bare array
