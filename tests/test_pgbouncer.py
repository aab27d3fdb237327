"""The ingest API, the pipeline and the CLI through a real pgbouncer in transaction mode.

pgbouncer hands each transaction whatever server connection is free, so anything
a session keeps (startup options, SET, session advisory locks, LISTEN) is either
refused or lost. Each role connects with its own login (LYTICS_*_DATABASE_URL),
the owner's work (CLI, dbt, exports) with DATABASE_URL, all through pgbouncer.
Migrations and Dagster's own storage connect to Postgres directly, as
docs/deployment.md says; so do the assertions here, to see what really is stored.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from lytics.exports.destinations import add_destination
from lytics.exports.runner import ExportRequest, UnitResult, export_window
from lytics.exports.windows import Window
from lytics.settings import Settings
from lytics.warehouse import logins
from lytics.warehouse.engine import role_engine
from lytics.warehouse.urls import libpq_dsn
from lytics_assets.resources import WarehouseResource
from lytics_assets.retention.assets import raw_horizons
from lytics_ingest_api.app import create_app
from tests.support import TEST_SECRET
from tests.support.cli import invoke
from tests.support.http import HTTP_TIMEOUT_S, serve
from tests.support.ingest import new_project
from tests.support.load import Load
from tests.support.pgbouncer import Pgbouncer, running_pgbouncer
from tests.support.pipeline import Pipeline, failures, point_pipeline_at
from tests.support.wait import wait_until

PASSWORDS = {
    logins.INGEST: "ingest-login-pw",
    logins.READER: "reader-login-pw",
    logins.PIPELINE: "pipeline-login-pw",
}
OWNER_PASSWORD = "owner-login-pw"  # what clients give pgbouncer when Postgres trusts the owner


@pytest.fixture
def role_passwords(pg_server: str) -> Iterator[dict[str, str]]:
    """The three roles as logins with passwords, for this test only (roles are per server)."""
    with psycopg.connect(libpq_dsn(pg_server), autocommit=True) as conn:
        for role, password in PASSWORDS.items():
            conn.execute(
                sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
    try:
        yield PASSWORDS
    finally:
        with psycopg.connect(libpq_dsn(pg_server), autocommit=True) as conn:
            for role in PASSWORDS:
                conn.execute(
                    sql.SQL("ALTER ROLE {} NOLOGIN PASSWORD NULL").format(sql.Identifier(role))
                )


@pytest.fixture
def bouncer(pg_server: str, role_passwords: dict[str, str]) -> Iterator[Pgbouncer]:
    owner = make_url(pg_server)
    users = {str(owner.username or "postgres"): owner.password or OWNER_PASSWORD, **role_passwords}
    # Its own folder in /tmp: run as another user, pgbouncer must be able to reach it.
    folder = Path(tempfile.mkdtemp(prefix="lyt-pgb-", dir="/tmp"))
    try:
        with running_pgbouncer(pg_server, folder, users) as running:
            yield running
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Through:
    """The URLs of one database through pgbouncer: the owner's and each role's."""

    def __init__(self, bouncer: Pgbouncer, pg_server: str, database_url: str) -> None:
        server = make_url(pg_server)
        self.database = str(make_url(database_url).database)
        self.bouncer = bouncer
        self.owner = bouncer.url(
            str(server.username or "postgres"), server.password or OWNER_PASSWORD, self.database
        )

    def role(self, role: str) -> str:
        return self.bouncer.url(role, PASSWORDS[role], self.database)

    def settings(self, **extra: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": SecretStr(self.owner),
            "ingest_database_url": SecretStr(self.role(logins.INGEST)),
            "reader_database_url": SecretStr(self.role(logins.READER)),
            "pipeline_database_url": SecretStr(self.role(logins.PIPELINE)),
            "secret_key": TEST_SECRET,
            "environment": "test",
            "rate_limit_per_second": 0,
        }
        return Settings(**(values | extra))


@pytest.fixture
def through(bouncer: Pgbouncer, pg_server: str, database_url: str) -> Through:
    return Through(bouncer, pg_server, database_url)


def _created_keys(out: str) -> tuple[str, str]:
    keys = dict(re.findall(r"(write|secret) key: (\S+)", out))
    return keys["write"], keys["secret"]


def _stored(engine: Engine, project_slug: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT e.message_id, count(*) FROM raw.events AS e"
                " JOIN app.projects AS p ON p.id = e.project_id WHERE p.slug = :slug GROUP BY 1"
            ),
            {"slug": project_slug},
        )
        return {m: c for m, c in rows}


@pytest.mark.slow
def test_ingest_reads_cli_and_pipeline_work_through_pgbouncer_and_survive_its_restart(
    through: Through,
    engine: Engine,
    pipeline: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The CLI, as the owner through pgbouncer.
    monkeypatch.setenv("DATABASE_URL", through.owner)
    monkeypatch.setenv("LYTICS_PIPELINE_DATABASE_URL", through.role(logins.PIPELINE))
    monkeypatch.setenv("LYTICS_SECRET_KEY", TEST_SECRET)
    site = invoke(monkeypatch, capsys, "projects", "create", "site")
    assert site.code == 0, site.err
    other = invoke(monkeypatch, capsys, "projects", "create", "other")
    assert other.code == 0, other.err
    write_key, secret_key = _created_keys(site.out)
    other_write, _ = _created_keys(other.out)

    # Ingest through pgbouncer, under load, across a pgbouncer restart.
    with serve(create_app(through.settings())) as base:
        load = Load(base, write_key)
        load.run(workers=4)
        wait_until(lambda: load.acknowledged() >= 20, "acknowledgements before the restart")
        through.bouncer.restart()
        back = time.monotonic()
        wait_until(
            lambda: load.acknowledged(sent_after=back) >= 20,
            "acknowledgements after pgbouncer's restart",
        )
        load.finish()
        other_event = {"type": "track", "event": "Other", "userId": "o", "messageId": "other-1"}
        # The first lookup of another key after the restart: the ingest pool's idle
        # connections were all cut, and it must not hand out a dead one.
        other_answer = httpx.post(
            f"{base}/v1/track", json=other_event, auth=(other_write, ""), timeout=HTTP_TIMEOUT_S
        )
        assert other_answer.status_code == 200, other_answer.text

        stored = _stored(engine, "site")
        acknowledged = [m for a in load.answers if a.acknowledged for m in a.ids]
        assert acknowledged
        assert [m for m in acknowledged if stored.get(m) != 1] == []
        assert set(stored.values()) == {1}
        # A restart cuts connections: a request then is refused (503) or cut, never a 500.
        assert {a.status for a in load.answers} <= {200, 503, 0}

        # The reader's own login through pgbouncer: one project's rows, newest first.
        recent = httpx.get(
            f"{base}/v1/events/recent",
            params={"limit": 100},
            headers={"Authorization": f"Bearer {secret_key}"},
            timeout=HTTP_TIMEOUT_S,
        )
        assert recent.status_code == 200, recent.text
        seen = {e["message_id"] for e in recent.json()["events"]}
        assert len(seen) == 100
        assert seen <= set(stored)

        # The pipeline (dbt as the owner) through pgbouncer, read back through the API.
        point_pipeline_at(through.owner, monkeypatch)
        today = datetime.now(UTC).date().isoformat()
        result = Pipeline(through.owner, pipeline.instance, pipeline.assets).refresh(today)
        assert result.success, failures(result)
        tiles = httpx.get(
            f"{base}/v1/dashboard/tiles",
            headers={"Authorization": f"Bearer {secret_key}"},
            timeout=HTTP_TIMEOUT_S,
        ).json()
        assert tiles["built"] is True
        values = {tile["key"]: tile["value"] for tile in tiles["tiles"]}
        assert (
            values["unique_visitors"] == 1
        )  # every load event is user "u"; "o" is another project's


def test_pipeline_role_jobs_and_exports_work_through_pgbouncer(
    through: Through,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", through.owner)
    monkeypatch.setenv("LYTICS_PIPELINE_DATABASE_URL", through.role(logins.PIPELINE))
    created = invoke(monkeypatch, capsys, "projects", "create", "site")
    assert created.code == 0, created.err
    kept = invoke(monkeypatch, capsys, "retention", "set", "site", "3")
    assert kept.code == 0, kept.err
    now = datetime.now(UTC)
    hour = Window("hourly", now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1))
    with engine.begin() as conn:
        project_id = conn.execute(
            text("SELECT id FROM app.projects WHERE slug = 'site'")
        ).scalar_one()
        for message_id, at in (("old", now - timedelta(days=30)), ("recent", hour.start)):
            conn.execute(
                text(
                    "INSERT INTO raw.events (project_id, message_id, type, event, user_id,"
                    " timestamp, received_at, source, payload) VALUES (:p, :m, 'track', 'E',"
                    " 'u', :at, :at, 'native', '{}')"
                ),
                {"p": project_id, "m": message_id, "at": at},
            )
        add_destination(
            conn,
            project_id=project_id,
            name="files",
            kind="local",
            local_path=str(tmp_path / "exports"),
            fmt="jsonl",
            frequency="hourly",
        )

    # Retention runs as the pipeline role, through that role's own login.
    result = dg.materialize(
        [raw_horizons], resources={"warehouse": WarehouseResource(database_url=through.owner)}
    )
    assert result.success
    assert set(_stored(engine, "site")) == {"recent"}

    # Two exports of the same partition at once: the transaction-scoped lock makes one
    # wait for the other, which then finds the partition exported. (A session lock would
    # stay behind on a pooled server connection and block every later export.)
    settings = through.settings()
    reports: list[UnitResult] = []

    def export(run: str) -> None:
        report = export_window(
            through.owner, settings, ExportRequest("events", hour, run, project_id)
        )
        reports.extend(report.units)

    exporters = [threading.Thread(target=export, args=(f"run-{n}",)) for n in range(2)]
    for exporter in exporters:
        exporter.start()
    for exporter in exporters:
        exporter.join(120)
    assert sorted(unit.status for unit in reports) == ["exported", "skipped"], reports
    [exported] = [unit for unit in reports if unit.status == "exported"]
    assert exported.rows == 1
    # And a forced re-export afterwards is not stuck behind a lock left on a pooled connection.
    again = export_window(
        through.owner, settings, ExportRequest("events", hour, "again", project_id, force=True)
    )
    assert [unit.status for unit in again.units] == ["exported"]


def test_a_role_login_that_acts_as_another_user_is_refused(
    through: Through, engine: Engine
) -> None:
    # The owner's login given as the reader's: it would read above row-level security.
    wrong = logins.role_login(logins.READER, None, through.owner)
    with pytest.raises(logins.WrongRoleError, match="lytics_reader"):
        role_engine(wrong).connect()
    _, _, secret = new_project(engine, "site")
    with serve(create_app(through.settings(reader_database_url=SecretStr(through.owner)))) as base:
        refused = httpx.get(
            f"{base}/v1/events/recent",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=HTTP_TIMEOUT_S,
        )
    assert refused.status_code == 503, refused.text
    right = role_engine(logins.role_login(logins.READER, None, through.role(logins.READER)))
    with right.connect() as conn:
        assert conn.execute(text("SELECT current_user")).scalar_one() == logins.READER
    right.dispose()
