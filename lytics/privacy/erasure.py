"""Removing a person's rows: raw events, replays, webhook payloads, the narrowed events.

The identities are suppressed first, so events that arrive while the erasure runs
are already dropped at the door. Raw rows go as the pipeline role (raw's one
other exception, besides retention); `analytics.int_events` rows go as the owner of
the dbt schema, as dbt itself runs. What the removed rows touched (event days,
ingestion windows) is recorded for the rebuild that follows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Engine, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from lytics.exports.windows import FREQUENCIES, floor
from lytics.privacy.identities import Person, link
from lytics.privacy.requests import get_request, set_status
from lytics.warehouse import logins
from lytics.warehouse.privacy_tables import identity_suppressions

PIPELINE_ROLE = logins.PIPELINE

DELETE_EVENTS = text(
    """
    DELETE FROM raw.events
    WHERE project_id = :project_id AND (user_id = ANY(:users) OR anonymous_id = ANY(:anonymous))
    RETURNING (timestamp AT TIME ZONE 'UTC')::date AS day, received_at
    """
)
DELETE_REPLAY_SESSIONS = text(
    """
    DELETE FROM raw.replay_sessions
    WHERE project_id = :project_id
      AND (user_id = ANY(:users) OR lower(user_email) = ANY(:emails))
    RETURNING session_id
    """
)
DELETE_REPLAY_EVENTS = text(
    "DELETE FROM raw.replay_events WHERE project_id = :project_id AND session_id = ANY(:sessions)"
)
# Any string anywhere in the payload equal to the email: Resend's `to`, a GitHub
# commit author, an HMAC sender's own shape.
DELETE_DELIVERIES = text(
    """
    DELETE FROM raw.webhook_deliveries
    WHERE project_id = :project_id
      AND jsonb_path_exists(payload, '$.** ? (@ == $email)',
                            jsonb_build_object('email', CAST(:email AS text)))
    RETURNING (received_at AT TIME ZONE 'UTC')::date AS day
    """
)
# Cadences of the destinations that hold this project's events (its own and backups).
EXPORT_FREQUENCIES = text(
    """
    SELECT DISTINCT frequency FROM app.export_destinations
    WHERE enabled AND (project_id = :project_id OR project_id IS NULL)
      AND 'events' = ANY(datasets)
    """
)
DELETE_INT_EVENTS = text(
    """
    DELETE FROM analytics.int_events
    WHERE project_id = :project_id AND visitor_id = ANY(:visitors)
    RETURNING event_date
    """
)


@dataclass(frozen=True)
class Erasure:
    person: Person
    removed: dict[str, int]
    event_days: list[date]
    export_windows: dict[str, list[str]]


def _as_pipeline(conn: Connection) -> None:
    conn.execute(text(f"SET LOCAL ROLE {PIPELINE_ROLE}"))


def _suppress(conn: Connection, project_id: int, request_id: int, person: Person) -> None:
    rows = [
        {"project_id": project_id, "identity_hash": digest, "request_id": request_id}
        for digest in person.hashes()
    ]
    if rows:
        conn.execute(pg_insert(identity_suppressions).values(rows).on_conflict_do_nothing())


def _windows(received: list[datetime], frequencies: set[str]) -> dict[str, list[str]]:
    return {
        frequency: sorted(
            {
                floor(at, frequency).strftime(
                    "%Y-%m-%d-%H:%M" if frequency == "hourly" else "%Y-%m-%d"
                )
                for at in received
            }
        )
        for frequency in FREQUENCIES
        if frequency in frequencies
    }


def erase(engine: Engine, request_id: int, run_id: str) -> Erasure:
    with engine.begin() as conn:
        request = get_request(conn, request_id)
        if request.status not in ("pending", "erasing"):
            raise ValueError(f"deletion request {request_id} is {request.status}, not pending")
        set_status(conn, request_id, "erasing", erase_run_id=run_id)
        person = link(conn, request.project_id, request.person)
        _suppress(conn, request.project_id, request_id, person)

    removed: Counter[str] = Counter()
    days: set[date] = set()
    received: list[datetime] = []
    params = {
        "project_id": request.project_id,
        "users": sorted(person.user_ids),
        "anonymous": sorted(person.anonymous_ids),
        "emails": sorted({e.lower() for e in person.emails}),
    }
    # One transaction for raw: a crash leaves the request `erasing`, and the retry
    # (the same request, linked again) finds whatever is left.
    with engine.begin() as conn:
        _as_pipeline(conn)
        for row in conn.execute(DELETE_EVENTS, params):
            days.add(row.day)
            received.append(row.received_at)
            removed["raw.events"] += 1
        sessions = [row.session_id for row in conn.execute(DELETE_REPLAY_SESSIONS, params)]
        removed["raw.replay_sessions"] = len(sessions)
        removed["raw.replay_events"] = conn.execute(
            DELETE_REPLAY_EVENTS, {"project_id": request.project_id, "sessions": sessions}
        ).rowcount
        for email in person.email_variants:
            for row in conn.execute(
                DELETE_DELIVERIES, {"project_id": request.project_id, "email": email}
            ):
                days.add(row.day)
                removed["raw.webhook_deliveries"] += 1
    with engine.begin() as conn:
        built: str | None = conn.execute(
            text("SELECT to_regclass('analytics.int_events')::text")
        ).scalar_one()
        if built:  # the marts have been built at least once
            for row in conn.execute(
                DELETE_INT_EVENTS,
                {"project_id": request.project_id, "visitors": person.visitor_ids},
            ):
                days.add(row.event_date)
                removed["analytics.int_events"] += 1
        frequencies: set[str] = set(
            conn.execute(EXPORT_FREQUENCIES, {"project_id": request.project_id}).scalars()
        )
        erasure = Erasure(person, dict(removed), sorted(days), _windows(received, frequencies))
        set_status(
            conn,
            request_id,
            "erased",
            event_days=erasure.event_days,
            export_windows=erasure.export_windows,
            summary={
                "removed": erasure.removed,
                "identities": {
                    "user_ids": len(person.user_ids),
                    "anonymous_ids": len(person.anonymous_ids),
                    "emails": len(person.emails),
                },
            },
        )
    return erasure
