"""Digest runs and their cooldown: at most one run starts per cooldown window.

The rule lives in the database (`ex_digest_runs_cooldown`, an exclusion constraint
on `app.digest_runs.cooldown`): of any number of concurrent inserts whose ranges
overlap, exactly one commits, and the others fail no matter which process, role
or code path made them. Here we translate that failure into a refusal that says
how long to wait.

Claims also queue on a transaction-level advisory lock before inserting. Two
inserts that each find the other's uncommitted row wait for each other, and an
exclusion constraint (unlike a unique index) can then deadlock: Postgres aborts
one of them after `deadlock_timeout` with an error that is not the refusal. In
line, each claimer sees the winner's committed row and is refused at once.

A run that fails gives its slot back (`cooldown` emptied), whatever failed: the
launch, the sending, or the process (`fail_dagster_run`, called when Dagster
reports the run failed or canceled). The cooldown keeps triggers apart; it must
not keep the retry of a failed run waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from psycopg import errors as pg_errors
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError


class CooldownActiveError(RuntimeError):
    def __init__(self, retry_after_s: float) -> None:
        self.retry_after_s = max(1, int(retry_after_s + 0.999))
        super().__init__(
            f"a digest run started less than the cooldown ago; retry in {self.retry_after_s} s"
        )


@dataclass(frozen=True)
class RunRequest:
    period_start: date
    period_end: date | None = None  # the last week a backfill covers; None: one week
    scope: str = "all"
    scope_email: str | None = None
    project_id: int | None = None  # None: every project
    dagster_run_id: str | None = None


CLAIM = """
INSERT INTO app.digest_runs
    (period_start, period_end, scope, scope_email, project_id, dagster_run_id, cooldown)
VALUES (%(period_start)s, %(period_end)s, %(scope)s, %(scope_email)s, %(project_id)s,
        %(dagster_run_id)s, tstzrange(now(), now() + make_interval(secs => %(cooldown)s)))
RETURNING id
"""


# pg_advisory_xact_lock key for claims: any fixed bigint that nothing else uses.
CLAIM_LOCK = 0x6C79_7469_6373_6431  # "lyticsd1"


def cooldown_remaining(conn: Connection) -> float:
    value = conn.exec_driver_sql("SELECT app.digest_cooldown_remaining()").scalar()
    return float(value or 0.0)


def claim(conn: Connection, request: RunRequest, cooldown_s: int) -> int:
    """Insert the run in its own savepoint; raise CooldownActiveError inside the cooldown.

    `conn` must be in a transaction; the claim counts once that transaction commits.
    """
    params: dict[str, Any] = {
        "period_start": request.period_start,
        "period_end": request.period_end,
        "scope": request.scope,
        "scope_email": request.scope_email,
        "project_id": request.project_id,
        "dagster_run_id": request.dagster_run_id,
        "cooldown": cooldown_s,
    }
    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%(key)s)", {"key": CLAIM_LOCK})
    try:
        with conn.begin_nested():
            return int(conn.exec_driver_sql(CLAIM, params).scalar_one())
    except IntegrityError as exc:
        if not isinstance(exc.orig, pg_errors.ExclusionViolation):
            raise
    raise CooldownActiveError(cooldown_remaining(conn))


def claim_now(engine: Engine, request: RunRequest, cooldown_s: int) -> int:
    with engine.begin() as conn:
        return claim(conn, request, cooldown_s)


def adopt(conn: Connection, run_id: int, dagster_run_id: str | None) -> None:
    """A run claimed by the API, now executing in Dagster."""
    conn.exec_driver_sql(
        "UPDATE app.digest_runs SET status = 'running', finished_at = NULL, "
        "dagster_run_id = coalesce(%(d)s, dagster_run_id) WHERE id = %(id)s",
        {"d": dagster_run_id, "id": run_id},
    )


def release(conn: Connection, run_id: int, error: str) -> None:
    """The run failed before sending (its launch or its setup): failed, slot freed."""
    conn.exec_driver_sql(
        "UPDATE app.digest_runs SET status = 'failed', finished_at = now(), error = %(e)s, "
        "cooldown = 'empty'::tstzrange WHERE id = %(id)s",
        {"e": error[:2000], "id": run_id},
    )


def finish(
    conn: Connection, run_id: int, *, sent: int, skipped: int, errors: int, error: str | None
) -> None:
    conn.exec_driver_sql(
        "UPDATE app.digest_runs SET status = %(status)s, finished_at = now(), sent = %(sent)s, "
        "skipped = %(skipped)s, errors = %(errors)s, error = %(error)s, "
        "cooldown = CASE WHEN %(error)s::text IS NULL THEN cooldown ELSE 'empty'::tstzrange END "
        "WHERE id = %(id)s",
        {
            "status": "failed" if error else "succeeded",
            "sent": sent,
            "skipped": skipped,
            "errors": errors,
            "error": error[:2000] if error else None,
            "id": run_id,
        },
    )


def fail_dagster_run(
    conn: Connection, dagster_run_id: str, digest_run_id: int | None, error: str
) -> int | None:
    """Dagster says this run ended without success: its digest run, if that attempt still
    holds it, is failed and frees its slot. Returns the digest run's id when it changed.

    `digest_run_id` (the run's `lytics/digest_run_id` tag) finds a run the API claimed
    before the attempt adopted it. A digest run a later attempt (a retry) has adopted
    names that attempt, so a late report about the dead one changes nothing.
    """
    found = conn.exec_driver_sql(
        "UPDATE app.digest_runs SET status = 'failed', finished_at = now(), "
        "error = coalesce(error, %(e)s), cooldown = 'empty'::tstzrange "
        "WHERE status = 'running' AND (dagster_run_id = %(d)s "
        "OR (id = %(id)s AND dagster_run_id IS NULL)) RETURNING id",
        {"e": error[:2000], "d": dagster_run_id, "id": digest_run_id},
    ).scalar()
    return int(found) if found is not None else None


def retried(conn: Connection, parent_dagster_run_id: str) -> int | None:
    """The unfinished digest run of a Dagster run being retried: the retry adopts it."""
    found = conn.exec_driver_sql(
        "SELECT id FROM app.digest_runs WHERE dagster_run_id = %(d)s "
        "AND status <> 'succeeded' ORDER BY id DESC LIMIT 1",
        {"d": parent_dagster_run_id},
    ).scalar()
    return int(found) if found is not None else None


def get(conn: Connection, run_id: int) -> dict[str, Any] | None:
    row = conn.exec_driver_sql(STATUS + " WHERE id = %(id)s", {"id": run_id}).mappings().first()
    return dict(row) if row else None


STATUS = """
SELECT id, digest, period_start, period_end, scope, scope_email, project_id, status,
       dagster_run_id, started_at, finished_at, sent, skipped, errors, error,
       upper(cooldown) AS cooldown_until
FROM app.digest_runs
"""
