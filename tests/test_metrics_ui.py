"""The Dagster UI tells the truth about the marts.

What must hold: after one run over a range of days, each day's partition page shows
that day's own row count and a preview of that day's rows only (not the window's);
each mart's page lists every column of its table, with the table's type and a
description.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import Engine, text

from lytics.warehouse.engine import create_sync_engine
from lytics_assets.definitions import defs
from lytics_assets.metrics.assets import day_columns
from lytics_assets.metrics.partition_metadata import PREVIEW_ROWS
from lytics_assets.metrics.project import dbt_project, prepare
from lytics_assets.metrics.translator import LyticsDbtTranslator
from tests.support.ingest import new_project
from tests.support.pipeline import (
    MARTS,
    Pipeline,
    dbt_assets_definition,
    failures,
    point_pipeline_at,
)
from tests.support.postgres import create_database, drop_database, unique_name

pytestmark = pytest.mark.slow

DAYS = ["2025-06-10", "2025-06-11", "2025-06-12"]
# Visitors with one pageview each (so one session each), per project slug and day:
# every day has its own number of sessions, and of projects active that day.
TRAFFIC = {
    "2025-06-10": {"alpha": 2},
    "2025-06-11": {"alpha": 7, "beta": 1},
    "2025-06-12": {"alpha": 3, "beta": 1, "gamma": 1},
}
# Hand-counted from TRAFFIC.
SESSIONS = {"2025-06-10": 2, "2025-06-11": 8, "2025-06-12": 5}
SITE_ROWS = {"2025-06-10": 1, "2025-06-11": 2, "2025-06-12": 3}


@dataclass(frozen=True)
class Built:
    engine: Engine
    instance: dg.DagsterInstance
    result: dg.ExecuteInProcessResult


def insert_traffic(engine: Engine) -> None:
    projects = {slug: new_project(engine, slug)[0] for slug in ("alpha", "beta", "gamma")}
    rows = [
        {
            "project": projects[slug],
            "message": f"{day}-{slug}-{n}",
            "visitor": f"{slug}-{n}",
            # Hours apart: one session per visitor, each inside its day.
            "at": datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(hours=1 + n),
        }
        for day, visitors in TRAFFIC.items()
        for slug, count in visitors.items()
        for n in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.events (project_id, message_id, type, anonymous_id, timestamp,"
                " original_timestamp, url, path, source, payload) VALUES (:project, :message,"
                " 'page', :visitor, :at, :at, 'https://site.example/', '/', 'native', '{}')"
            ),
            rows,
        )


@pytest.fixture(scope="module")
def built(pg_server: str, template_db: str) -> Iterator[Built]:
    """One window build of all of DAYS, in one run, over TRAFFIC."""
    name = unique_name("ui")
    url = create_database(pg_server, name, template=template_db)
    engine = create_sync_engine(url)
    try:
        with pytest.MonkeyPatch.context() as patch, dg.DagsterInstance.ephemeral() as instance:
            point_pipeline_at(url, patch)
            insert_traffic(engine)
            result = Pipeline(url, instance, dbt_assets_definition()).build(DAYS[0], DAYS[-1])
            assert result.success, failures(result)
            yield Built(engine, instance, result)
    finally:
        engine.dispose()
        drop_database(pg_server, name)


def manifest() -> dict[str, Any]:
    return dict(json.loads(prepare(dbt_project()).read_text()))


def latest_materialization(
    instance: dg.DagsterInstance, key: dg.AssetKey, day: str
) -> dg.EventLogRecord:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
    ).records
    assert records, f"{key.to_user_string()} has no materialization for {day}"
    return records[0]


def preview_rows(markdown: str) -> tuple[list[str], list[list[str]]]:
    """A markdown table's column names and rows (cells as text)."""
    lines = [line.strip() for line in markdown.strip().splitlines()]

    def cells(line: str) -> list[str]:
        return [cell.strip() for cell in line.strip("|").split("|")]

    assert len(lines) >= 2, markdown
    assert set(lines[1]) <= {"|", "-"}, markdown
    return cells(lines[0]), [cells(line) for line in lines[2:]]


def rows_per_day(engine: Engine, relation: str, day_column: str) -> dict[str, int]:
    with engine.connect() as conn:
        counted = conn.execute(
            text(f"SELECT {day_column}::text, count(*) FROM {relation} GROUP BY 1")
        ).all()
    return {str(row[0]): int(row[1]) for row in counted}


def test_each_partition_shows_its_own_row_count_and_preview(built: Built) -> None:
    # The premise: no two days alike, and none equal to the window's total.
    for per_day in (SESSIONS, SITE_ROWS):
        assert len(set(per_day.values())) == len(DAYS)
        assert sum(per_day.values()) not in per_day.values()
    tables = day_columns(manifest(), LyticsDbtTranslator())
    assert {dg.AssetKey(["analytics", name]) for name in MARTS} <= set(tables)
    materialized = {
        e.asset_key for e in built.result.get_asset_materialization_events() if e.asset_key
    }
    assert set(tables) <= materialized

    shown: dict[dg.AssetKey, dict[str, int]] = {}
    for key, (relation, day_column) in tables.items():
        in_table = rows_per_day(built.engine, relation, day_column)
        assert set(in_table) <= set(DAYS), f"{relation} has rows outside the build's days"
        shown[key] = {}
        for day in DAYS:
            record = latest_materialization(built.instance, key, day)
            assert record.run_id == built.result.run_id  # the one run built every day
            event = record.asset_materialization
            assert event is not None
            assert event.partition == day
            metadata = event.metadata

            count = metadata["dagster/partition_row_count"]
            assert isinstance(count, dg.IntMetadataValue)
            assert count.value == in_table.get(day, 0), (key.to_user_string(), day)
            shown[key][day] = count.value

            preview = metadata["preview"]
            assert isinstance(preview, dg.MarkdownMetadataValue)
            columns, rows = preview_rows(preview.value or "")
            assert day_column in columns, preview.value
            days_previewed = {row[columns.index(day_column)] for row in rows}
            assert days_previewed <= {day}, (key.to_user_string(), day, preview.value)
            assert len(rows) == min(in_table.get(day, 0), PREVIEW_ROWS), preview.value

    # Hand-counted from the traffic: each day its own count, never the window's total.
    assert shown[dg.AssetKey(["analytics", "fct_sessions"])] == SESSIONS
    assert shown[dg.AssetKey(["analytics", "int_events"])] == SESSIONS  # one event each
    assert shown[dg.AssetKey(["analytics", "daily_visitors"])] == SESSIONS
    assert shown[dg.AssetKey(["analytics", "daily_site_metrics"])] == SITE_ROWS


def test_each_mart_lists_every_column_of_its_table_with_type_and_description(
    built: Built,
) -> None:
    nodes = [
        node
        for node in manifest()["nodes"].values()
        if node["resource_type"] == "model"
        and node["original_file_path"].startswith(("models/marts/", "models/intermediate/"))
        and "github" not in node["fqn"]
    ]
    assert sorted(node["name"] for node in nodes) == sorted(MARTS)

    # DATABASE_URL and dbt's connection point at the built database (the fixture).
    specs = {spec.key: spec for spec in defs().resolve_all_asset_specs()}
    with built.engine.connect() as conn:
        for node in nodes:
            spec = specs[dg.AssetKey(["analytics", node["name"]])]
            schema = spec.metadata.get("dagster/column_schema")
            assert isinstance(schema, dg.TableSchema), f"{node['name']} has no column schema"
            # What Postgres holds: each column's type as `\d` prints it.
            in_table: dict[str, str] = dict(
                conn.execute(
                    text(
                        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                        " WHERE attrelid = CAST(:relation AS regclass) AND attnum > 0"
                        " AND NOT attisdropped ORDER BY attnum"
                    ),
                    {"relation": f"analytics.{node['alias']}"},
                ).all()
            )
            listed = [column.name for column in schema.columns]
            assert len(listed) == len(set(listed)), f"{node['name']} lists a column twice"
            assert set(listed) == set(in_table), node["name"]
            for column in schema.columns:
                where = f"{node['name']}.{column.name}"
                assert (column.description or "").strip(), f"{where} has no description"
                assert column.type == in_table[column.name], where
