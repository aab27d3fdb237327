"""Deletion requests through the API: file one for the key's project, and follow it.

The request is carried out by the pipeline (`privacy_deletions` in Dagster); the API
only records it, as `lytics_reader` scoped to the key's project, so a key can
neither file nor read another project's requests. docs/privacy.md has the flow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import get, post
from litestar.params import FromPath, JSONBody

from lytics.privacy.requests import MAX_IDENTITIES, MAX_IDENTITY_LENGTH, IdentityError, named_person
from lytics_ingest_api.errors import ApiError, bad_request
from lytics_ingest_api.openapi_docs import SECRET_ERRORS, responses
from lytics_ingest_api.project_access import KeyPrincipal, Reader

Identity = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_IDENTITY_LENGTH)]
Identities = Annotated[list[Identity], msgspec.Meta(max_length=MAX_IDENTITIES)]
Status = Literal["pending", "erasing", "erased", "rebuilding", "done", "failed"]


class DeletionBody(msgspec.Struct, forbid_unknown_fields=True):
    """The person: at least one user id or anonymous id; emails find their webhook payloads."""

    userIds: Identities = []
    anonymousIds: Identities = []
    emails: Identities = []


class DeletionRequested(msgspec.Struct):
    id: int
    status: Status
    requestedAt: datetime


class DeletionState(msgspec.Struct):
    id: int
    status: Status
    requestedAt: datetime
    finishedAt: datetime | None
    removed: dict[str, int]
    identitiesLinked: int
    daysRebuilt: int
    error: str | None


# A request still open for the very same person is answered instead of a second one.
OPEN_SAME = """
SELECT id, status, requested_at FROM app.deletion_requests
WHERE status IN ('pending', 'erasing', 'erased', 'rebuilding')
  AND user_ids = %(users)s AND anonymous_ids = %(anonymous)s AND emails = %(emails)s
ORDER BY id LIMIT 1
"""
INSERT = """
INSERT INTO app.deletion_requests (project_id, user_ids, anonymous_ids, emails, requested_by)
VALUES (%(project_id)s, %(users)s, %(anonymous)s, %(emails)s, 'api')
RETURNING id, status, requested_at
"""
STATE = """
SELECT id, status, requested_at, finished_at, summary, cardinality(event_days) AS days, error
FROM app.deletion_requests WHERE id = %(id)s
"""


@post(
    "/v1/privacy/deletions",
    operation_id="privacy_delete",
    tags=["privacy"],
    summary="Delete a person's data everywhere and drop their later events (asynchronous)",
    status_code=202,
    responses=responses(DeletionRequested, *SECRET_ERRORS, status=202),
)
async def request_deletion(
    data: JSONBody[DeletionBody], principal: KeyPrincipal, reader: Reader
) -> DeletionRequested:
    try:
        person = named_person(data.userIds, data.anonymousIds, data.emails)
    except IdentityError as exc:
        raise bad_request(str(exc), field=exc.field) from None
    params: dict[str, Any] = {
        "project_id": principal.project_id,
        "users": sorted(person.user_ids),
        "anonymous": sorted(person.anonymous_ids),
        "emails": sorted(person.emails),
    }
    async with reader.cursor() as cur:
        await cur.execute(OPEN_SAME, params)
        row = await cur.fetchone()
        if row is None:
            await cur.execute(INSERT, params)
            row = await cur.fetchone()
    assert row is not None  # INSERT ... RETURNING answers one row
    return DeletionRequested(row["id"], row["status"], row["requested_at"])


@get(
    "/v1/privacy/deletions/{request_id:int}",
    operation_id="privacy_deletion",
    tags=["privacy"],
    summary="Where a deletion request stands, and what it removed (counts only)",
    responses=responses(DeletionState, *SECRET_ERRORS, 404),
)
async def deletion_state(request_id: FromPath[int], reader: Reader) -> DeletionState:
    rows = await reader.rows(STATE, {"id": request_id})
    if not rows:
        raise ApiError(404, "not_found", f"no deletion request {request_id}", field="request_id")
    row = rows[0]
    summary = row["summary"]
    identities = summary.get("identities", {})
    return DeletionState(
        id=row["id"],
        status=row["status"],
        requestedAt=row["requested_at"],
        finishedAt=row["finished_at"],
        removed=summary.get("removed", {}),
        identitiesLinked=identities.get("user_ids", 0) + identities.get("anonymous_ids", 0),
        daysRebuilt=row["days"],
        error=row["error"],
    )


ROUTES = [request_deletion, deletion_state]
