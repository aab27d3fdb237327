"""Every tenant sees only itself, in every schema.

A login granted `lytics_reader` with `lytics.project_id = P` reads only P's rows in
every relation it can select (raw, app, github, exports and the dbt-built
`analytics`), and with the setting unset it reads nothing. The relations are not
listed here: they are enumerated from the catalog, so a new table, model or
partition is checked the day it appears, and one that cannot be checked (no
tenant column, not in the allow-list below) fails the test.

Two projects get rows in every schema (raw rows by SQL, GitHub data through a sync
from the fake GitHub, the marts by a real `dbt build`); the checks then run as a
real login that is a member of `lytics_reader`, not as a superuser with SET ROLE.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from lytics import api_keys
from lytics.projects import create_project
from lytics.settings import Settings
from lytics.warehouse import migrate
from lytics.warehouse.engine import create_sync_engine
from lytics.warehouse.urls import dbt_env, libpq_dsn
from lytics_ingest_api.app import create_app
from tests.support import TEST_SECRET
from tests.support.github import connect_source, served_github, sync_once
from tests.support.http import HTTP_TIMEOUT_S, serve
from tests.support.postgres import create_database, drop_database, unique_name

ROOT = Path(__file__).resolve().parents[1]
DBT = Path(sys.executable).parent / "dbt"
# The GitHub fixture's activity lies around 2026-11-01 (tests/support/fake_github.py).
WINDOW = {"start_date": "2026-10-25", "end_date": "2026-11-05"}
EVENT_DAYS = ("2026-11-01", "2026-11-02", "2026-11-03")

# Relations whose tenant column is not called project_id.
TENANT_COLUMN = {"app.projects": "id"}
# Relations with no tenant column whose rows belong to projects through another table:
# the ids a reader scoped to a project may see, as the superuser computes them.
OWNED_THROUGH = {
    "app.users": (
        "id",
        "SELECT user_id FROM app.project_members WHERE project_id = %(project)s",
    ),
}
# Rows with a NULL tenant column that every *scoped* reader may see (never an unscoped
# one): they belong to the deployment, not to a tenant.
SHARED_ROWS = {
    "app.digest_runs": "the scheduled weekly run for all projects, shown by /v1/digest/status",
}
# Relations the reader may select that hold no tenant data at all (lookup tables).
# Each needs its reason; anything else without a tenant column fails the test.
NO_TENANT_DATA: dict[str, str] = {}

# Materializations that replace the relation (or make no table) on every build.
REBUILT_OR_NOT_TABLES = {"table", "view", "ephemeral", "materialized_view"}

ENUMERATE = """
SELECT format('%%I.%%I', n.nspname, c.relname) AS name, c.oid, c.relkind, c.relrowsecurity,
       coalesce('security_invoker=true' = ANY (c.reloptions), false) AS security_invoker
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%%'
  AND has_schema_privilege(%(login)s, n.oid, 'USAGE')
  AND (has_table_privilege(%(login)s, c.oid, 'SELECT')
       OR has_any_column_privilege(%(login)s, c.oid, 'SELECT'))
ORDER BY 1
"""


@dataclass
class Warehouse:
    url: str
    login: str
    a: int
    b: int
    keys: dict[int, dict[str, str]]
    dbt_target: Path

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(libpq_dsn(self.url), autocommit=True)

    def as_login(self) -> psycopg.Connection:
        """The tenant's own login: a member of lytics_reader, no SET ROLE."""
        return psycopg.connect(libpq_dsn(self.url), user=self.login, autocommit=True)


@dataclass(frozen=True)
class Relation:
    name: str
    oid: int
    kind: str
    row_security: bool
    security_invoker: bool


# --------------------------------------------------------------------------- the data


def _fill_raw_and_app(conn: psycopg.Connection, project: int, slug: str) -> None:
    for day in EVENT_DAYS:
        for n in range(6):
            visitor = f"{slug}-visitor-{n % 3}"
            conn.execute(
                "INSERT INTO raw.events (project_id, message_id, type, event, anonymous_id, "
                "session_id, timestamp, url, path, referrer, utm_source, source, payload) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s::date + make_interval(hours => %s), "
                "%s, %s, %s, %s, 'native', '{}')",
                (
                    project,
                    f"{slug}-{day}-{n}",
                    "page" if n % 2 else "track",
                    None if n % 2 else "Signed Up",
                    visitor,
                    f"{visitor}-{day}",
                    day,
                    8 + n,
                    f"https://{slug}.example/p{n % 2}",
                    f"/p{n % 2}",
                    "https://search.example/q",
                    f"{slug}-news",
                ),
            )
        conn.execute(
            "INSERT INTO raw.metrics (project_id, source, metric_name, metric_value, metric_date) "
            "VALUES (%s, 'stripe', 'mrr', 100, %s)",
            (project, day),
        )
        resend = {
            "type": "email.delivered",
            "created_at": f"{day}T09:00:00Z",
            "data": {"to": [f"someone@{slug}.example"], "subject": "Hi", "email_id": "e1"},
        }
        conn.execute(
            "INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id, event_type, "
            "sender, headers, body, payload, received_at) "
            "VALUES (%s, 'resend', %s, 'email.delivered', %s, '{}', 'x', %s, %s::date)",
            (project, f"{slug}-{day}", f"{slug}@example.com", json.dumps(resend), day),
        )
    conn.execute(
        "INSERT INTO raw.replay_sessions (project_id, session_id) VALUES (%s, 'replay-1')",
        (project,),
    )
    conn.execute(
        "INSERT INTO raw.replay_events (project_id, session_id, batch_id, event_count, events) "
        "VALUES (%s, 'replay-1', 'batch-1', 1, '[]')",
        (project,),
    )
    user = conn.execute(
        "INSERT INTO app.users (email) VALUES (%s) RETURNING id", (f"owner@{slug}.example",)
    ).fetchone()
    assert user is not None
    conn.execute(
        "INSERT INTO app.project_members (project_id, user_id, role) VALUES (%s, %s, 'owner')",
        (project, user[0]),
    )
    run = conn.execute(
        "INSERT INTO app.digest_runs (project_id, period_start, cooldown) "
        "VALUES (%s, '2026-10-26', 'empty') RETURNING id",
        (project,),
    ).fetchone()
    assert run is not None
    conn.execute(
        "INSERT INTO app.digest_deliveries (project_id, period_start, recipient, run_id, "
        "idempotency_key) VALUES (%s, '2026-10-26', %s, %s, %s)",
        (project, f"owner@{slug}.example", run[0], f"{slug}-digest"),
    )
    destination = conn.execute(
        "INSERT INTO app.export_destinations (project_id, name, kind, local_path) "
        "VALUES (%s, 'archive', 'local', '/tmp/nowhere') RETURNING id",
        (project,),
    ).fetchone()
    assert destination is not None
    conn.execute(
        "INSERT INTO exports.partitions (destination_id, project_id, dataset, frequency, "
        "window_start, window_end, status, format) "
        "VALUES (%s, %s, 'events', 'daily', '2026-11-01', '2026-11-02', 'succeeded', 'parquet')",
        (destination[0], project),
    )
    conn.execute(
        "INSERT INTO app.deletion_requests (project_id, user_ids, requested_by) "
        "VALUES (%s, ARRAY[%s], 'cli')",
        (project, f"person-of-{slug}"),
    )


def _fill_shared(conn: psycopg.Connection) -> None:
    """The deployment's own rows, no project: they must not reach an unscoped reader."""
    conn.execute(
        "INSERT INTO app.digest_runs (period_start, cooldown) VALUES ('2026-10-26', 'empty')"
    )
    conn.execute(
        "INSERT INTO app.export_destinations (name, kind, local_path, is_backup) "
        "VALUES ('backup', 'local', '/tmp/backup', true)"
    )
    conn.execute("INSERT INTO app.users (email) VALUES ('nobody@example.com')")


def _dbt_build(url: str, tmp: Path, **extra_env: str) -> None:
    env = {**os.environ, **dbt_env(url), **extra_env}
    result = subprocess.run(
        [
            str(DBT),
            "build",
            "--project-dir",
            str(ROOT / "dbt_project"),
            "--profiles-dir",
            str(ROOT / "dbt_project"),
            # Its own target and logs: other runs of the project may be going on.
            "--target-path",
            str(tmp / "target"),
            "--log-path",
            str(tmp / "logs"),
            "--vars",
            json.dumps(WINDOW),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


@pytest.fixture(scope="module")
def warehouse(
    pg_server: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    name = unique_name("tenants")
    url = create_database(pg_server, name, template=template_db)
    login = f"lyt_tenant_{uuid.uuid4().hex[:12]}"
    engine = create_sync_engine(url)
    try:
        with psycopg.connect(libpq_dsn(url), autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN IN ROLE lytics_reader").format(sql.Identifier(login))
            )
        keys: dict[int, dict[str, str]] = {}
        ids: list[int] = []
        with served_github() as github:
            for slug in ("tenant-a", "tenant-b"):
                with engine.begin() as conn:
                    project = create_project(conn, slug).id
                    keys[project] = {
                        "write": api_keys.create_key(conn, project, "write").plaintext,
                        "secret": api_keys.create_key(conn, project, "secret").plaintext,
                    }
                ids.append(project)
                source = connect_source(engine, github.api_url, project_id=project)
                assert sync_once(engine, source).complete
                with psycopg.connect(libpq_dsn(url), autocommit=True) as admin:
                    _fill_raw_and_app(admin, project, slug)
                    admin.execute(
                        "INSERT INTO github.repository_snapshots (project_id, repository_id, "
                        "snapshot_date, stargazers_count, forks_count, watchers_count, "
                        "open_issues_count, size_kb, default_branch, observed_at) "
                        "VALUES (%s, 101, '2026-11-01', 10, 1, 4, 2, 100, 'main', now())",
                        (project,),
                    )
        with psycopg.connect(libpq_dsn(url), autocommit=True) as admin:
            _fill_shared(admin)
        dbt_dir = tmp_path_factory.mktemp("dbt")
        _dbt_build(url, dbt_dir)
        yield Warehouse(url, login, ids[0], ids[1], keys, dbt_dir / "target")
    finally:
        engine.dispose()
        drop_database(pg_server, name)
        with psycopg.connect(libpq_dsn(pg_server), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(login)))


def _readable(warehouse: Warehouse) -> list[Relation]:
    with warehouse.admin() as admin:
        rows = admin.execute(ENUMERATE, {"login": warehouse.login}).fetchall()
    return [Relation(*row) for row in rows]


def _columns(warehouse: Warehouse, relation: Relation) -> set[str]:
    with warehouse.admin() as admin:
        rows = admin.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 "
            "AND NOT attisdropped",
            (relation.oid,),
        ).fetchall()
    return {r[0] for r in rows}


def _tenant_column(warehouse: Warehouse, relation: Relation) -> str | None:
    if relation.name in TENANT_COLUMN:
        return TENANT_COLUMN[relation.name]
    return "project_id" if "project_id" in _columns(warehouse, relation) else None


def _scoped(conn: psycopg.Connection, project: int | None, query: sql.Composed) -> list[Any]:
    """Rows of `query` in a reader transaction scoped to `project` (None: unscoped)."""
    with conn.transaction():
        if project is not None:
            conn.execute("SELECT set_config('lytics.project_id', %s, true)", (str(project),))
        return [row[0] for row in conn.execute(query).fetchall()]


# --------------------------------------------------------------------------- the checks


@pytest.mark.slow
def test_the_catalog_enumeration_reaches_every_schema(warehouse: Warehouse) -> None:
    """Guards the test itself: an enumeration that found nothing would prove nothing."""
    names = {r.name for r in _readable(warehouse)}
    for expected in (
        "raw.events",
        "raw.webhook_deliveries",
        "app.projects",
        "app.users",
        "app.export_destinations",  # a column-level grant
        "github.repositories",
        "exports.partitions",
        "analytics.daily_site_metrics",
        "analytics.daily_visitors",
        "analytics.daily_visitor_recency",
        "analytics.daily_kpi_metrics",
        "analytics.github_daily_repository_metrics",
    ):
        assert expected in names, f"{expected} is not readable by the reader any more"
    assert "app.api_keys" not in names, "the reader needs no key table: keys verify elsewhere"
    assert not {n for n in names if n.startswith("analytics.stg_")}, "staging is the pipeline's"


@pytest.mark.slow
def test_every_readable_relation_is_row_secured_or_an_invoker_view(warehouse: Warehouse) -> None:
    """Structure, whatever the data: a table without RLS, a view running with its
    owner's rights or a materialized view (which cannot have RLS) is a hole even while
    empty."""
    holes = []
    for relation in _readable(warehouse):
        if relation.kind in ("r", "p") and relation.row_security:
            continue
        if relation.kind == "v" and relation.security_invoker:
            continue
        if relation.name in NO_TENANT_DATA:
            continue
        holes.append(f"{relation.name} (relkind {relation.kind})")
    assert holes == []


def _check_owned_through(
    warehouse: Warehouse,
    name: str,
    *,
    admin: psycopg.Connection,
    reader: psycopg.Connection,
    fresh: psycopg.Connection,
) -> None:
    column, owned = OWNED_THROUGH[name]
    query = sql.SQL("SELECT {} FROM {}").format(sql.Identifier(column), sql.SQL(name))
    for project in (warehouse.a, warehouse.b):
        allowed = {r[0] for r in admin.execute(owned, {"project": project})}
        seen = set(_scoped(reader, project, query))
        assert seen, f"{name}: project {project} sees none of its rows"
        assert seen <= allowed, f"{name}: project {project} sees {seen - allowed}"
    assert _scoped(fresh, None, query) == [], f"{name}: unscoped rows"
    assert _scoped(reader, None, query) == [], f"{name}: unscoped rows"


def _check_tenant_column(
    warehouse: Warehouse,
    name: str,
    column: str,
    *,
    admin: psycopg.Connection,
    reader: psycopg.Connection,
    fresh: psycopg.Connection,
) -> None:
    query = sql.SQL("SELECT {} FROM {}").format(sql.Identifier(column), sql.SQL(name))
    everything = [r[0] for r in admin.execute(query)]
    for project, other in ((warehouse.a, warehouse.b), (warehouse.b, warehouse.a)):
        # Not vacuous: both projects have rows here (if not, add some to the fixture).
        assert other in everything, f"{name}: no rows of project {other} to hide"
        seen = _scoped(reader, project, query)
        foreign = [v for v in seen if v != project and not (v is None and name in SHARED_ROWS)]
        assert foreign == [], f"{name}: project {project} sees rows of {foreign}"
        # And all of its own rows: the policy scopes, it does not just deny.
        assert seen.count(project) == everything.count(project), name
    assert _scoped(fresh, None, query) == [], f"{name}: unscoped rows"
    # A project that does not exist sees nothing of any tenant, and once a scoped
    # transaction has ended (the setting left behind empty) the reader sees nothing.
    stray = _scoped(reader, 987654321, query)
    assert [v for v in stray if v is not None] == [], name
    assert _scoped(reader, None, query) == [], f"{name}: rows after a scoped transaction"


@pytest.mark.slow
def test_a_scoped_reader_sees_only_its_project_and_an_unscoped_one_nothing(
    warehouse: Warehouse,
) -> None:
    checked: list[str] = []
    unexplained: list[str] = []
    with warehouse.admin() as admin, warehouse.as_login() as reader, warehouse.as_login() as fresh:
        # `fresh` never sets lytics.project_id; `reader` sets it in transactions that end.
        for relation in _readable(warehouse):
            if relation.name in NO_TENANT_DATA:
                continue
            if relation.name in OWNED_THROUGH:
                _check_owned_through(
                    warehouse, relation.name, admin=admin, reader=reader, fresh=fresh
                )
            else:
                column = _tenant_column(warehouse, relation)
                if column is None:
                    unexplained.append(relation.name)
                    continue
                _check_tenant_column(
                    warehouse, relation.name, column, admin=admin, reader=reader, fresh=fresh
                )
            checked.append(relation.name)
    assert unexplained == [], (
        "readable relations without a tenant column: give them a project_id, stop granting "
        f"them to lytics_reader, or justify them in NO_TENANT_DATA: {unexplained}"
    )
    assert len(checked) >= 20, checked


@pytest.mark.slow
def test_a_scoped_reader_changes_only_its_own_rows(warehouse: Warehouse) -> None:
    """The few relations the reader may write (digest bookkeeping) are scoped the same way."""
    with warehouse.admin() as admin:
        writable = admin.execute(
            """
            SELECT format('%%I.%%I', n.nspname, c.relname), a.attname
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p') AND n.nspname NOT LIKE 'pg\\_%%'
              AND n.nspname <> 'information_schema'
              AND has_column_privilege(%(login)s, c.oid, a.attnum, 'UPDATE')
            ORDER BY 1, 2
            """,
            {"login": warehouse.login},
        ).fetchall()
    assert writable, "the reader may update digest bookkeeping (app.project_members)"
    with warehouse.admin() as admin, warehouse.as_login() as reader:
        for name, column in {name: column for name, column in writable}.items():
            tenant = TENANT_COLUMN.get(name, "project_id")
            own = admin.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
                    sql.SQL(name), sql.Identifier(tenant)
                ),
                (warehouse.a,),
            ).fetchone()
            update = sql.SQL("UPDATE {} SET {} = {}").format(
                sql.SQL(name), sql.Identifier(column), sql.Identifier(column)
            )
            with reader.transaction(force_rollback=True):
                reader.execute(
                    "SELECT set_config('lytics.project_id', %s, true)", (str(warehouse.a),)
                )
                assert reader.execute(update).rowcount == (own[0] if own else 0), name
            with reader.transaction(force_rollback=True):
                assert reader.execute(update).rowcount == 0, name


@pytest.mark.slow
def test_the_isolation_hook_keeps_existing_policies_and_takes_no_lock(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """Run again over built marts, the post-hook finds everything in place: same policy
    objects, and it does not queue behind a reader holding a mart open (ALTER TABLE and
    CREATE POLICY would). Only models that dbt updates in place are held: one it
    rebuilds from scratch (materialized='table') takes an exclusive lock of its own."""
    policies = (
        "SELECT c.oid, p.oid FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'analytics' "
        "ORDER BY 1, 2"
    )
    manifest = json.loads((warehouse.dbt_target / "manifest.json").read_text())
    in_place = [
        f'"{node["schema"]}"."{node["alias"]}"'
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["config"]["materialized"] not in REBUILT_OR_NOT_TABLES
    ]
    assert in_place, "no model updated in place to hold open"
    with warehouse.admin() as admin:
        before = admin.execute(policies).fetchall()
        assert before
    with warehouse.admin() as holder:
        # A dashboard request in the middle of a read of every mart.
        holder.execute("BEGIN")
        for table in in_place:
            holder.execute(sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(sql.SQL(table)))
        try:
            _dbt_build(warehouse.url, tmp_path, PGOPTIONS="-c lock_timeout=5s")
        finally:
            holder.execute("ROLLBACK")
    with warehouse.admin() as admin:
        after = admin.execute(policies).fetchall()
    rebuilt = {table for table, _ in before} ^ {table for table, _ in after}
    kept_before = [row for row in before if row[0] not in rebuilt]
    kept_after = [row for row in after if row[0] not in rebuilt]
    assert kept_after == kept_before


# --------------------------------------------------------------------------- the read API


@pytest.fixture(scope="module")
def api(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(
        database_url=warehouse.url,
        secret_key=TEST_SECRET,
        data_dir=tmp_path_factory.mktemp("data"),
        environment="test",
    )
    with serve(create_app(settings)) as base:
        yield base


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.slow
def test_the_read_api_authenticates_and_serves_each_project_its_own_rows(
    warehouse: Warehouse, api: str
) -> None:
    a, b = warehouse.keys[warehouse.a], warehouse.keys[warehouse.b]
    for keys, slug in ((a, "tenant-a"), (b, "tenant-b")):
        recent = httpx.get(
            f"{api}/v1/events/recent?limit=100",
            headers=_bearer(keys["secret"]),
            timeout=HTTP_TIMEOUT_S,
        )
        assert recent.status_code == 200, recent.text
        body = recent.json()
        assert body["project"] == slug
        assert body["events"]
        assert all(e["message_id"].startswith(f"{slug}-") for e in body["events"]), body
        messages = httpx.get(
            f"{api}/v1/messages", headers=_bearer(keys["secret"]), timeout=HTTP_TIMEOUT_S
        ).json()
        assert {m["sender"] for m in messages["data"]} == {f"{slug}@example.com"}
        repos = httpx.get(
            f"{api}/v1/github/repos", headers=_bearer(keys["secret"]), timeout=HTTP_TIMEOUT_S
        )
        assert repos.status_code == 200, repos.text
        assert repos.json()["repos"], repos.text
        # Write keys authenticate too (the ingest path), through the same function.
        sent = httpx.post(
            f"{api}/v1/track",
            json={"event": "Checked", "userId": "u", "messageId": f"{slug}-check"},
            auth=(keys["write"], ""),
            timeout=HTTP_TIMEOUT_S,
        )
        assert sent.status_code == 200, sent.text
    # Keys of the wrong kind, unknown keys and no keys are refused.
    for headers in (_bearer(a["write"]), _bearer("lys_nope"), {}):
        refused = httpx.get(f"{api}/v1/events/recent", headers=headers, timeout=HTTP_TIMEOUT_S)
        assert refused.status_code == 401, headers
    unknown = httpx.post(
        f"{api}/v1/track", json={"event": "x"}, auth=("lyw_nope", ""), timeout=HTTP_TIMEOUT_S
    )
    assert unknown.status_code == 401


@pytest.mark.slow
def test_dashboard_tiles_read_the_project_s_own_marts(warehouse: Warehouse, api: str) -> None:
    with warehouse.admin() as admin:
        own = admin.execute(
            "SELECT coalesce(sum(pageviews), 0) FROM analytics.daily_site_metrics "
            "WHERE project_id = %s",
            (warehouse.a,),
        ).fetchone()
    assert own is not None
    assert own[0] > 0
    tiles = httpx.get(
        f"{api}/v1/dashboard/tiles?from={EVENT_DAYS[0]}&to={EVENT_DAYS[-1]}",
        headers=_bearer(warehouse.keys[warehouse.a]["secret"]),
        timeout=HTTP_TIMEOUT_S,
    )
    assert tiles.status_code == 200, tiles.text
    by_key = {t["key"]: t for t in tiles.json()["tiles"]}
    assert by_key["pageviews"]["value"] == own[0]


# --------------------------------------------------------------------------- upgrading


def test_upgrading_isolates_what_dbt_built_before_the_hook_existed(
    empty_database_url: str,
) -> None:
    """A deployment upgraded to 0009 is closed at once, not after its next dbt build."""
    migrate.upgrade(empty_database_url, "0008")
    with psycopg.connect(libpq_dsn(empty_database_url), autocommit=True) as admin:
        admin.execute(
            """
            CREATE SCHEMA analytics;
            GRANT USAGE ON SCHEMA analytics TO lytics_reader, lytics_pipeline;
            CREATE TABLE analytics.mart AS
                SELECT p AS project_id, 1 AS n FROM generate_series(1, 2) p;
            CREATE TABLE analytics.no_tenant AS SELECT 1 AS n;
            CREATE VIEW analytics.stg AS SELECT * FROM raw.events;
            CREATE MATERIALIZED VIEW analytics.frozen AS SELECT * FROM analytics.mart;
            GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO lytics_reader, lytics_pipeline;
            """
        )
    migrate.upgrade(empty_database_url)
    with psycopg.connect(
        libpq_dsn(empty_database_url), options="-c role=lytics_reader", autocommit=True
    ) as reader:
        assert reader.execute("SELECT count(*) FROM analytics.mart").fetchone() == (0,)
        with reader.transaction():
            reader.execute("SELECT set_config('lytics.project_id', '2', true)")
            assert reader.execute("SELECT project_id FROM analytics.mart").fetchall() == [(2,)]
        for name in ("no_tenant", "stg", "frozen"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(f"SELECT * FROM analytics.{name}")
    with psycopg.connect(
        libpq_dsn(empty_database_url), options="-c role=lytics_pipeline", autocommit=True
    ) as pipeline:
        assert pipeline.execute("SELECT count(*) FROM analytics.mart").fetchone() == (2,)
    # And back: the key table is the reader's again, analytics stays as it is.
    migrate.downgrade(empty_database_url, "0008")
    migrate.upgrade(empty_database_url)
