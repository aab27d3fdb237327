"""Who receives a project's digest (members with digests on) and who never gets one
(the suppression list). Used by `lytics digests`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

SUPPRESSION_REASONS = ("bounced", "complained", "unsubscribed", "manual")


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str | None
    role: str
    digest_enabled: bool
    suppressed: str | None


@dataclass(frozen=True)
class Suppression:
    email: str
    reason: str
    detail: str | None
    created_at: datetime


def add(
    conn: Connection,
    project_id: int,
    email: str,
    *,
    name: str | None = None,
    digest_enabled: bool = True,
    role: str = "member",
) -> None:
    """Add (or update) a member: the user is created if the address is new."""
    if "@" not in email:
        raise ValueError(f"{email!r} is not an email address")
    user_id: int = conn.exec_driver_sql(
        "INSERT INTO app.users (email, name) VALUES (%(e)s, %(n)s) "
        "ON CONFLICT (lower(email)) DO UPDATE SET name = coalesce(excluded.name, users.name) "
        "RETURNING id",
        {"e": email, "n": name},
    ).scalar_one()
    conn.exec_driver_sql(
        "INSERT INTO app.project_members (project_id, user_id, role, digest_enabled) "
        "VALUES (%(p)s, %(u)s, %(r)s, %(on)s) ON CONFLICT (project_id, user_id) "
        "DO UPDATE SET digest_enabled = excluded.digest_enabled, role = excluded.role",
        {"p": project_id, "u": user_id, "r": role, "on": digest_enabled},
    )


def remove(conn: Connection, project_id: int, email: str) -> bool:
    removed = conn.exec_driver_sql(
        "DELETE FROM app.project_members m USING app.users u WHERE u.id = m.user_id "
        "AND m.project_id = %(p)s AND lower(u.email) = lower(%(e)s)",
        {"p": project_id, "e": email},
    ).rowcount
    return bool(removed)


def listing(conn: Connection, project_id: int) -> list[Recipient]:
    rows = conn.exec_driver_sql(
        "SELECT u.email, u.name, m.role, m.digest_enabled, app.email_suppression_reason(u.email) "
        "FROM app.project_members m JOIN app.users u ON u.id = m.user_id "
        "WHERE m.project_id = %(p)s ORDER BY lower(u.email)",
        {"p": project_id},
    ).all()
    return [Recipient(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]


def suppress(
    conn: Connection, email: str, reason: str = "manual", detail: str | None = None
) -> None:
    if reason not in SUPPRESSION_REASONS:
        raise ValueError(f"reason must be one of {', '.join(SUPPRESSION_REASONS)}")
    conn.exec_driver_sql(
        "INSERT INTO app.email_suppressions (email, reason, detail) VALUES (lower(%(e)s), "
        "%(r)s, %(d)s) ON CONFLICT (email) DO UPDATE SET reason = excluded.reason, "
        "detail = excluded.detail, lifted_at = NULL, created_at = now()",
        {"e": email, "r": reason, "d": detail},
    )


def unsuppress(conn: Connection, email: str) -> bool:
    """Lift a suppression (the address works again). The row stays, marked lifted, so the
    bounces already stored in raw webhooks do not bring it back; a new one will."""
    return bool(
        conn.exec_driver_sql(
            "UPDATE app.email_suppressions SET lifted_at = now() "
            "WHERE email = lower(%(e)s) AND lifted_at IS NULL",
            {"e": email},
        ).rowcount
    )


def suppressions(conn: Connection) -> list[Suppression]:
    rows = conn.exec_driver_sql(
        "SELECT email, reason, detail, created_at FROM app.email_suppressions "
        "WHERE lifted_at IS NULL ORDER BY email"
    ).all()
    return [Suppression(r[0], r[1], r[2], r[3]) for r in rows]
