"""Raw-event retention: each project keeps its last N whole days of raw events.

The horizon moves first and the rows go after it, in short batches: the pipeline
reads `app.raw_horizons` and neither reloads nor rebuilds days before it, so the
marts keep those days' aggregates (built from `analytics.int_events`, which keeps
its narrowed copy) while raw loses the payloads. A horizon only moves forward.
docs/runbooks.md ("Retention") has the operator's view.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from lytics.projects import get_project
from lytics.settings import MAX_RETENTION_DAYS
from lytics.warehouse.retention_tables import raw_horizons, retention_runs
from lytics.warehouse.tables import projects

SETTING = "raw_retention_days"

# `id IN (... LIMIT n)`: each statement removes at most n rows, found through the
# (project_id, timestamp) index, in its own transaction.
DELETE_BATCH = text(
    """
    DELETE FROM raw.events WHERE id IN (
        SELECT id FROM raw.events
        WHERE project_id = :project_id AND timestamp < :retained_from
        LIMIT :batch_rows
    )
    """
)


class RetentionSettingError(ValueError):
    pass


@dataclass(frozen=True)
class Policy:
    project_id: int
    project_slug: str
    retention_days: int

    def horizon(self, today: date) -> datetime:
        """UTC midnight `retention_days` days before today: today plus that many days stay."""
        return datetime.combine(today - timedelta(days=self.retention_days), time(), UTC)


@dataclass(frozen=True)
class Removal:
    policy: Policy
    retained_from: datetime
    events_removed: int


def retention_days(project_settings: dict[str, Any], default: int | None) -> int | None:
    """A project's own setting wins; null there means 'keep forever' for that project."""
    if SETTING not in project_settings:
        return default
    value: object = project_settings[SETTING]
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_RETENTION_DAYS
    ):
        raise RetentionSettingError(
            f"{SETTING} must be a whole number of days from 1 to {MAX_RETENTION_DAYS}"
            f" or null, not {value!r}"
        )
    return value


def policies(engine: Engine, default_days: int | None) -> list[Policy]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(projects.c.id, projects.c.slug, projects.c.settings).order_by(projects.c.id)
        ).all()
    found = []
    for row in rows:
        try:
            days = retention_days(row.settings, default_days)
        except RetentionSettingError as exc:
            # Loud, before anything is removed anywhere: a typo must not delete data.
            raise RetentionSettingError(f"project {row.slug!r}: {exc}") from exc
        if days is not None:
            found.append(Policy(row.id, row.slug, days))
    return found


def _advance_horizon(engine: Engine, project_id: int, horizon: datetime) -> datetime:
    statement = (
        pg_insert(raw_horizons)
        .values(project_id=project_id, retained_from=horizon)
        .on_conflict_do_update(
            index_elements=[raw_horizons.c.project_id],
            set_={
                "retained_from": text(
                    "greatest(app.raw_horizons.retained_from, excluded.retained_from)"
                ),
                "updated_at": text("now()"),
            },
        )
        .returning(raw_horizons.c.retained_from)
    )
    with engine.begin() as conn:
        retained_from: datetime = conn.execute(statement).scalar_one()
    return retained_from


def remove_expired(
    engine: Engine, policy: Policy, *, today: date, batch_rows: int, run_id: str
) -> Removal:
    """Move the project's horizon, then remove its raw events before it; audited."""
    started_at = datetime.now(UTC)
    retained_from = _advance_horizon(engine, policy.project_id, policy.horizon(today))
    removed = 0
    while True:
        with engine.begin() as conn:
            batch = conn.execute(
                DELETE_BATCH,
                {
                    "project_id": policy.project_id,
                    "retained_from": retained_from,
                    "batch_rows": batch_rows,
                },
            ).rowcount
        removed += batch
        if batch < batch_rows:
            break
    with engine.begin() as conn:
        conn.execute(
            insert(retention_runs).values(
                project_id=policy.project_id,
                run_id=run_id,
                retention_days=policy.retention_days,
                retained_from=retained_from,
                events_removed=removed,
                started_at=started_at,
            )
        )
    return Removal(policy, retained_from, removed)


def apply_retention(
    engine: Engine, found: Iterable[Policy], *, today: date, batch_rows: int, run_id: str
) -> list[Removal]:
    return [
        remove_expired(engine, policy, today=today, batch_rows=batch_rows, run_id=run_id)
        for policy in found
    ]


def set_project_window(conn: Connection, slug: str, days: int | None, *, inherit: bool) -> None:
    """Set a project's window: `days`, None for 'keep forever', or inherit the default."""
    if not inherit:
        retention_days({SETTING: days}, None)  # validates
    project = get_project(conn, slug)
    settings = {k: v for k, v in project.settings.items() if k != SETTING}
    if not inherit:
        settings[SETTING] = days
    conn.execute(update(projects).where(projects.c.id == project.id).values(settings=settings))


@dataclass(frozen=True)
class Status:
    project_slug: str
    retention_days: int | None
    retained_from: datetime | None
    last_run_at: datetime | None
    last_removed: int | None


STATUS = text(
    """
    SELECT p.slug, p.settings, h.retained_from, last.finished_at, last.events_removed
    FROM app.projects p
    LEFT JOIN app.raw_horizons h ON h.project_id = p.id
    LEFT JOIN LATERAL (
        SELECT finished_at, events_removed FROM app.retention_runs r
        WHERE r.project_id = p.id ORDER BY finished_at DESC LIMIT 1
    ) last ON true
    ORDER BY p.slug
    """
)


def status(conn: Connection, default_days: int | None) -> list[Status]:
    found = []
    for row in conn.execute(STATUS):
        try:
            days = retention_days(row.settings, default_days)
        except RetentionSettingError:
            days = None
        found.append(Status(row.slug, days, row.retained_from, row.finished_at, row.events_removed))
    return found
