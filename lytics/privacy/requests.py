"""Deletion requests: created by the CLI or the API, worked through by the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from lytics.privacy.identities import Person
from lytics.projects import get_project
from lytics.warehouse.privacy_tables import deletion_requests

MAX_IDENTITIES = 100
MAX_IDENTITY_LENGTH = 500
OPEN = ("pending", "erasing", "erased", "rebuilding")


class DeletionRequestError(ValueError):
    pass


@dataclass(frozen=True)
class DeletionRequest:
    id: int
    project_id: int
    status: str
    person: Person
    requested_by: str
    requested_at: datetime
    event_days: list[date]
    export_windows: dict[str, list[str]]
    summary: dict[str, Any]
    error: str | None
    finished_at: datetime | None


class IdentityError(DeletionRequestError):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _clean(values: list[str] | None, field: str) -> list[str]:
    cleaned = sorted({v.strip() for v in values or [] if v and v.strip()})
    for value in cleaned:
        if len(value) > MAX_IDENTITY_LENGTH or "\x00" in value:
            raise IdentityError(
                f"{field}: each must be 1-{MAX_IDENTITY_LENGTH} characters without NUL", field
            )
    return cleaned


def named_person(
    user_ids: list[str] | None, anonymous_ids: list[str] | None, emails: list[str] | None
) -> Person:
    """The person a request names, cleaned and checked (the CLI and the API alike)."""
    users = _clean(user_ids, "userIds")
    anonymous = _clean(anonymous_ids, "anonymousIds")
    mails = _clean(emails, "emails")
    if not users and not anonymous:
        raise IdentityError("name the person: at least one user id or anonymous id", "userIds")
    if len(users) + len(anonymous) + len(mails) > MAX_IDENTITIES:
        raise IdentityError(f"at most {MAX_IDENTITIES} identities per request", "userIds")
    return Person(frozenset(users), frozenset(anonymous), frozenset(mails))


def create_request(
    conn: Connection,
    project_slug: str,
    *,
    user_ids: list[str] | None = None,
    anonymous_ids: list[str] | None = None,
    emails: list[str] | None = None,
    requested_by: str,
) -> DeletionRequest:
    person = named_person(user_ids, anonymous_ids, emails)
    project = get_project(conn, project_slug)
    row = conn.execute(
        insert(deletion_requests)
        .values(
            project_id=project.id,
            user_ids=sorted(person.user_ids),
            anonymous_ids=sorted(person.anonymous_ids),
            emails=sorted(person.emails),
            requested_by=requested_by,
        )
        .returning(*deletion_requests.c)
    ).one()
    return _request(row._mapping)


def _request(row: Any) -> DeletionRequest:
    return DeletionRequest(
        id=row["id"],
        project_id=row["project_id"],
        status=row["status"],
        person=Person(
            frozenset(row["user_ids"] or ()),
            frozenset(row["anonymous_ids"] or ()),
            frozenset(row["emails"] or ()),
        ),
        requested_by=row["requested_by"],
        requested_at=row["requested_at"],
        event_days=list(row["event_days"]),
        export_windows=dict(row["export_windows"]),
        summary=dict(row["summary"]),
        error=row["error"],
        finished_at=row["finished_at"],
    )


def get_request(
    conn: Connection, request_id: int, project_id: int | None = None
) -> DeletionRequest:
    query = select(*deletion_requests.c).where(deletion_requests.c.id == request_id)
    if project_id is not None:
        query = query.where(deletion_requests.c.project_id == project_id)
    row = conn.execute(query).one_or_none()
    if row is None:
        raise DeletionRequestError(f"no deletion request {request_id}")
    return _request(row._mapping)


def open_requests(conn: Connection) -> list[DeletionRequest]:
    rows = conn.execute(
        select(*deletion_requests.c)
        .where(deletion_requests.c.status.in_(OPEN))
        .order_by(deletion_requests.c.id)
    )
    return [_request(row._mapping) for row in rows]


def set_status(conn: Connection, request_id: int, status: str, **values: Any) -> None:
    if status in ("done", "failed"):
        values.setdefault("finished_at", datetime.now().astimezone())
    if status == "done":
        # What stays is counts and hashes: the identities in clear go with the data.
        values.update(user_ids=None, anonymous_ids=None, emails=None)
    conn.execute(
        update(deletion_requests)
        .where(deletion_requests.c.id == request_id)
        .values(status=status, **values)
    )
