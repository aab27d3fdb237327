"""The outbox: one `app.digest_deliveries` row per (digest, week, project, recipient).

Life of a row: `pending` (planned) -> `claimed` by an attempt (message rendered and
stored, about to be sent) -> `sent`; or `skipped` (no data, unsubscribed), `suppressed`
(bounced, complained), `failed` (Resend refused it for good). The unique key
means a recipient has at most one row per week, hence at most one email; the
row's `idempotency_key` (or its `batch_key`) goes to Resend with the stored
payload, so a resend of a `claimed` row after a crash cannot deliver twice. A claim
names its attempt (`claimed_by`, see lytics.digests.attempts): only a claim whose
attempt is over is resent by another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection

from lytics.digests.attempts import Attempt

DIGEST = "weekly"

SYNC_SUPPRESSIONS = """
INSERT INTO app.email_suppressions (email, reason, detail)
SELECT DISTINCT ON (email) email, reason, detail FROM (
    SELECT lower(CASE jsonb_typeof(d.payload -> 'data' -> 'to')
                 WHEN 'array' THEN d.payload -> 'data' -> 'to' ->> 0
                 ELSE d.payload -> 'data' ->> 'to' END) AS email,
           CASE WHEN coalesce(d.payload ->> 'type', d.event_type) = 'email.complained'
                THEN 'complained' ELSE 'bounced' END AS reason,
           'resend webhook ' || d.delivery_id AS detail,
           d.id, d.received_at
    FROM raw.webhook_deliveries d
    WHERE d.provider = 'resend'
      AND coalesce(d.payload ->> 'type', d.event_type) IN ('email.bounced', 'email.complained')
      AND coalesce(d.payload -> 'data' -> 'bounce' ->> 'type', '') <> 'Transient'
) found
WHERE email IS NOT NULL AND email <> ''
  -- A lifted suppression comes back only with a bounce or complaint received after it.
  AND NOT EXISTS (SELECT 1 FROM app.email_suppressions s
                  WHERE s.email = found.email
                    AND (s.lifted_at IS NULL OR s.lifted_at >= found.received_at))
ORDER BY email, id DESC
ON CONFLICT (email) DO UPDATE SET reason = excluded.reason, detail = excluded.detail,
    lifted_at = NULL, created_at = now()
"""

SCOPE = """
  AND (%(project)s::bigint IS NULL OR d.project_id = %(project)s::bigint)
  AND (%(email)s::text IS NULL OR d.recipient = lower(%(email)s::text))
"""

PLAN = """
INSERT INTO app.digest_deliveries
    (digest, period_start, project_id, recipient, run_id, idempotency_key)
SELECT %(digest)s, %(week)s, m.project_id, lower(u.email), %(run)s,
       %(prefix)s || %(digest)s || '/' || %(week)s::text || '/' || m.project_id::text || '/'
           || encode(sha256(convert_to(lower(u.email), 'UTF8')), 'hex')
FROM app.project_members m JOIN app.users u ON u.id = m.user_id
WHERE m.digest_enabled
  AND (%(project)s::bigint IS NULL OR m.project_id = %(project)s::bigint)
  AND (%(email)s::text IS NULL OR lower(u.email) = lower(%(email)s::text))
ON CONFLICT (digest, period_start, project_id, recipient) DO NOTHING
"""

OTHER_ATTEMPTS_CLAIMS = (
    """
SELECT d.id, d.batch_key, d.claimed_by,
       d.claimed_at < now() - make_interval(secs => %(window)s) AS expired
FROM app.digest_deliveries d
WHERE d.digest = %(digest)s AND d.period_start = %(week)s AND d.status = 'claimed'
  AND d.claimed_by IS DISTINCT FROM %(attempt)s
"""
    + SCOPE
    + " ORDER BY d.id FOR UPDATE OF d SKIP LOCKED"
)

PENDING = """
SELECT d.id, d.project_id, d.recipient, d.idempotency_key, s.reason AS suppressed,
       coalesce(bool_or(m.digest_enabled), false) AS enabled
FROM app.digest_deliveries d
LEFT JOIN app.email_suppressions s ON s.email = d.recipient AND s.lifted_at IS NULL
LEFT JOIN app.users u ON lower(u.email) = d.recipient
LEFT JOIN app.project_members m ON m.project_id = d.project_id AND m.user_id = u.id
WHERE d.id = ANY(%(ids)s)
GROUP BY d.id, s.reason
ORDER BY d.id
"""


@dataclass(frozen=True)
class Scope:
    week: date
    project_id: int | None = None
    email: str | None = None

    def params(self) -> dict[str, Any]:
        return {
            "digest": DIGEST,
            "week": self.week,
            "project": self.project_id,
            "email": self.email.lower() if self.email else None,
        }


@dataclass(frozen=True)
class Claimed:
    """Rows that go out in one request: a batch (batch_key set) or one email."""

    ids: list[int]
    payloads: list[dict[str, Any]]
    keys: list[str]
    batch_key: str | None
    # Loaded from `claimed`: an earlier attempt may have been accepted, so these rows
    # may only ever be resent as they are, never put back to `pending`.
    recovered: bool = False

    @property
    def request_key(self) -> str:
        return self.batch_key or self.keys[0]


def key_prefix(secret_key: str) -> str:
    """Keys unique to this deployment: two Lytics sharing a Resend team cannot collide."""
    return "lytics-" + hashlib.sha256(f"digest-keys:{secret_key}".encode()).hexdigest()[:10] + "/"


def batch_key(keys: Sequence[str]) -> str:
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:40]
    return f"{keys[0].rsplit('/', 2)[0]}/batch-{digest}"


def sync_suppressions(conn: Connection) -> int:
    """Copy bounces and complaints from stored Resend webhooks onto the suppression list."""
    return conn.exec_driver_sql(SYNC_SUPPRESSIONS).rowcount


def plan(conn: Connection, scope: Scope, run_id: int | None, prefix: str) -> int:
    params = scope.params() | {"run": run_id, "prefix": prefix}
    return conn.exec_driver_sql(PLAN, params).rowcount


def lock_pending(conn: Connection, scope: Scope, limit: int) -> list[dict[str, Any]]:
    # Lock first (FOR UPDATE cannot sit beside GROUP BY), then read what we locked.
    ids = [
        int(r[0])
        for r in conn.exec_driver_sql(
            "SELECT d.id FROM app.digest_deliveries d WHERE d.digest = %(digest)s "
            "AND d.period_start = %(week)s AND d.status = 'pending'"
            + SCOPE
            + " ORDER BY d.id LIMIT %(limit)s FOR UPDATE OF d SKIP LOCKED",
            scope.params() | {"limit": limit},
        )
    ]
    if not ids:
        return []
    rows = conn.exec_driver_sql(PENDING, {"ids": ids}).mappings()
    return [dict(r) for r in rows]


def set_status(conn: Connection, ids: Sequence[int], status: str, error: str | None) -> None:
    conn.exec_driver_sql(
        "UPDATE app.digest_deliveries SET status = %(s)s, last_error = %(e)s "
        "WHERE id = ANY(%(ids)s)",
        {"s": status, "e": error, "ids": list(ids)},
    )


def mark_claimed(
    conn: Connection,
    group: Claimed,
    run_id: int | None,
    attempt_id: str,
    payloads: Sequence[dict[str, Any]],
) -> None:
    for row_id, payload in zip(group.ids, payloads, strict=True):
        conn.exec_driver_sql(
            "UPDATE app.digest_deliveries SET status = 'claimed', claimed_at = now(), "
            "claimed_by = %(attempt)s, attempts = attempts + 1, run_id = %(run)s, "
            "payload = %(payload)s::jsonb, batch_key = %(batch)s, last_error = NULL "
            "WHERE id = %(id)s",
            {
                "run": run_id,
                "attempt": attempt_id,
                "payload": json.dumps(payload),
                "batch": group.batch_key,
                "id": row_id,
            },
        )


def stale_claimed(
    conn: Connection, scope: Scope, attempt: Attempt, window_s: float
) -> tuple[list[int], list[str]]:
    """Rows left `claimed` by attempts that are over: (ids too old to resend, handles of the
    groups to resend: a batch key, or `id:N` for a single email).

    Claims of an attempt still in progress are not touched: that process sends them.
    A claim without an attempt (made before attempts were recorded) counts as over.
    """
    rows = conn.exec_driver_sql(
        OTHER_ATTEMPTS_CLAIMS, scope.params() | {"attempt": attempt.id, "window": window_s}
    ).all()
    claimers: set[str | None] = {r[2] for r in rows}
    over = {claimer for claimer in claimers if claimer is None or attempt.is_over(claimer)}
    expired: list[int] = []
    handles: list[str] = []
    for row in rows:
        row_id, key, claimer, too_old = int(row[0]), row[1], row[2], bool(row[3])
        if claimer not in over:
            continue
        if too_old:
            expired.append(row_id)
        else:
            handles.append(str(key) if key is not None else f"id:{row_id}")
    return expired, handles


def load_group(
    conn: Connection, handle: str, run_id: int | None, attempt_id: str
) -> Claimed | None:
    """A claimed group as it was first sent: one row (`id:N`) or every row of a batch."""
    params: dict[str, Any]
    if handle.startswith("id:"):
        where, params = "id = %(id)s", {"id": int(handle[3:])}
    else:
        where, params = "batch_key = %(key)s", {"key": handle}
    rows = conn.exec_driver_sql(
        f"SELECT id, idempotency_key, payload, batch_key FROM app.digest_deliveries "
        f"WHERE {where} AND status = 'claimed' ORDER BY id FOR UPDATE",
        params,
    ).all()
    if not rows:
        return None
    conn.exec_driver_sql(
        "UPDATE app.digest_deliveries SET attempts = attempts + 1, run_id = %(run)s, "
        "claimed_by = %(attempt)s WHERE id = ANY(%(ids)s)",
        {"run": run_id, "attempt": attempt_id, "ids": [r[0] for r in rows]},
    )
    return Claimed(
        ids=[int(r[0]) for r in rows],
        payloads=[dict(r[2]) for r in rows],
        keys=[str(r[1]) for r in rows],
        batch_key=rows[0][3],
        recovered=True,
    )


def mark_sent(conn: Connection, ids: Sequence[int], provider_ids: Sequence[str]) -> None:
    for row_id, provider_id in zip(ids, provider_ids, strict=True):
        conn.exec_driver_sql(
            "UPDATE app.digest_deliveries SET status = 'sent', sent_at = now(), "
            "provider_message_id = %(p)s, last_error = NULL WHERE id = %(id)s",
            {"p": provider_id, "id": row_id},
        )


def release(conn: Connection, ids: Sequence[int], error: str) -> None:
    """Definitely not sent (Resend refused before accepting): back to the queue."""
    conn.exec_driver_sql(
        "UPDATE app.digest_deliveries SET status = 'pending', payload = NULL, batch_key = NULL, "
        "claimed_at = NULL, claimed_by = NULL, last_error = %(e)s WHERE id = ANY(%(ids)s)",
        {"e": error[:1000], "ids": list(ids)},
    )


def note_error(conn: Connection, ids: Sequence[int], error: str) -> None:
    conn.exec_driver_sql(
        "UPDATE app.digest_deliveries SET last_error = %(e)s WHERE id = ANY(%(ids)s)",
        {"e": error[:1000], "ids": list(ids)},
    )


def unbatch(conn: Connection, ids: Sequence[int]) -> None:
    """A batch refused as a whole (nothing sent): its rows go out one by one."""
    conn.exec_driver_sql(
        "UPDATE app.digest_deliveries SET batch_key = NULL WHERE id = ANY(%(ids)s)",
        {"ids": list(ids)},
    )


REPORT = (
    """
SELECT p.slug AS project, d.recipient, d.status, d.provider_message_id, d.last_error,
       d.run_id, d.attempts, d.sent_at
FROM app.digest_deliveries d JOIN app.projects p ON p.id = d.project_id
WHERE d.digest = %(digest)s AND d.period_start = %(week)s
"""
    + SCOPE
    + " ORDER BY p.slug, d.recipient"
)


def report(conn: Connection, scope: Scope) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.exec_driver_sql(REPORT, scope.params()).mappings()]
