"""Incremental refreshes give exactly what a full rebuild gives.

Events arrive in many small batches, out of order: late events for earlier days,
sessions that span two batches and midnight, visitors with and without SDK session
ids, a session id shared by two visitors, gaps of exactly 30:00 and of 30:01, rows
committed after newer ones, pushed metrics re-sent with new values. After each batch
the raw-data sensor requests a run and the run folds the new rows in (refresh
new_rows). The marts must then equal, row for row, a rebuild of the whole range from
raw into empty marts, and refreshes with nothing new must change nothing.

Visitors also come back on other days, so each visitor-day's previous visit day (and
daily_visitor_recency, built from it) changes when a late event adds a day before it:
one visitor's middle day arrives last, between two days already built. Then a
deletion request erases a visitor of two days that are not adjacent, each day rebuilt
by its own window run as the privacy sensor asks, and the marts must again equal a
rebuild into empty marts.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
from sqlalchemy import Engine, text

from lytics.privacy.erasure import erase
from lytics.privacy.requests import create_request
from lytics_assets.metrics.lineage import refreshed_models, tables_built_from_raw
from lytics_assets.metrics.partitions import daily
from lytics_assets.metrics.refresh import REFRESH_TAG
from lytics_assets.metrics.requests import RANGE_END, RANGE_START
from lytics_assets.metrics.sensors import build_raw_data_sensor
from lytics_assets.metrics.translator import LyticsDbtTranslator
from lytics_assets.resources import WarehouseResource
from tests.support.ingest import new_project
from tests.support.pipeline import (
    Pipeline,
    failures,
    snapshot,
)

DAY0 = date(2025, 3, 7)
DAY0_START = datetime(2025, 3, 7, tzinfo=UTC)
MIDNIGHT = datetime(2025, 3, 8, tzinfo=UTC)
PATHS = ["/", "/pricing", "/docs", "/blog/a", "/blog/b", None]
REFERRERS = [
    None,
    "https://www.Google.com/search?q=x",
    "https://news.example.org:8443/item",
    "t.co/x",
]


def _visitor_events(rng: random.Random, visitor: str, start: datetime) -> list[dict[str, Any]]:
    """A visitor's day: bursts separated by gaps around the 30-minute timeout."""
    events, at = [], start
    for _ in range(rng.randint(2, 9)):
        gap = rng.choice(
            [
                timedelta(seconds=rng.randint(5, 600)),
                timedelta(minutes=30),
                timedelta(minutes=30, seconds=1),
                timedelta(minutes=rng.randint(31, 90)),
            ]
        )
        at += gap
        page = rng.random() < 0.7
        events.append(
            {
                "visitor": visitor,
                "type": "page" if page else "track",
                "event": None if page else rng.choice(["Signed Up", "Clicked", "Purchase"]),
                "at": at,
                "path": rng.choice(PATHS) if page else None,
                "referrer": rng.choice(REFERRERS),
                "utm_source": rng.choice([None, None, "newsletter", "ads"]),
                "session_id": None,
            }
        )
    return events


def _events(rng: random.Random) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for v in range(18):
        # Starts from early on day 0 to late on day 2; some runs cross midnight.
        start = datetime(2025, 3, 7, tzinfo=UTC) + timedelta(
            minutes=rng.randint(0, 3 * 24 * 60 - 90)
        )
        events += _visitor_events(rng, f"v{v}", start)
    # Visitors whose SDK sends session ids, one of them shared by two visitors, and one
    # visitor mixing events with and without a session id, across midnight.
    for visitor, session in (("s1", "sess-a"), ("s2", "sess-a"), ("s3", "sess-b")):
        for k in range(4):
            events.append(
                {
                    "visitor": visitor,
                    "type": "page",
                    "event": None,
                    "at": MIDNIGHT - timedelta(minutes=20) + timedelta(minutes=9 * k),
                    "path": "/app",
                    "referrer": None,
                    "utm_source": None,
                    "session_id": session if k != 2 or visitor != "s3" else None,
                }
            )
    # Returning visitors: a short visit on some of the three days each, and one who
    # always skips the middle day (the deletion request's person).
    for day in (0, 2):
        events += _visitor_events(rng, "back", DAY0_START + timedelta(days=day, hours=1))
    for r in range(6):
        for day in sorted(rng.sample(range(3), rng.randint(2, 3))):
            events += _visitor_events(
                rng, f"r{r}", DAY0_START + timedelta(days=day, minutes=rng.randint(0, 600))
            )
    return events


def _returning_across_a_late_day(rng: random.Random) -> tuple[list[dict[str, Any]], ...]:
    """A visitor on days 0 and 2 (the first batch) whose day 1 arrives last."""
    days = [_visitor_events(rng, "gap", DAY0_START + timedelta(days=d, hours=9)) for d in range(3)]
    return days[0] + days[2], days[1]


def _insert(
    engine: Engine, project_id: int, batch: list[dict[str, Any]], received: datetime
) -> None:
    with engine.begin() as conn:
        for i, e in enumerate(batch):
            conn.execute(
                text(
                    "INSERT INTO raw.events (project_id, message_id, type, event, anonymous_id,"
                    " session_id, timestamp, received_at, path, referrer, utm_source, source,"
                    " payload) VALUES (:p, :m, :type, :event, :visitor, :session_id, :at, :r,"
                    " :path, :referrer, :utm_source, 'native', '{}')"
                ),
                {
                    **e,
                    "p": project_id,
                    "m": e["message_id"],
                    "r": received + timedelta(milliseconds=i),
                },
            )


def _insert_metric(
    engine: Engine, project_id: int, day: date, value: int, received: datetime
) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.metrics (project_id, source, metric_name, metric_value,"
                " metric_date, received_at) VALUES (:p, 'crm', 'reach', :v, :d, :r)"
            ),
            {"p": project_id, "v": value, "d": day, "r": received},
        )


def _run_sensor_requests(
    pipeline: Pipeline, sensor: dg.SensorDefinition, cursor: str | None
) -> str | None:
    warehouse = WarehouseResource(database_url=pipeline.database_url)
    with dg.build_sensor_context(
        instance=pipeline.instance, cursor=cursor, resources={"warehouse": warehouse}
    ) as ctx:
        result = sensor(ctx)
    if isinstance(result, dg.SkipReason):
        return cursor
    assert isinstance(result, dg.SensorResult)
    for request in result.run_requests:
        assert request.tags[REFRESH_TAG] == "new_rows"
        assert request.asset_check_keys == []
        first = request.partition_key or request.tags[RANGE_START]
        last = request.partition_key or request.tags[RANGE_END]
        outcome = pipeline.refresh(first, last)
        assert outcome.success, failures(outcome)
    return result.cursor


@pytest.mark.slow
# A dbt run per batch: minutes on a busy two-core machine.
@pytest.mark.timeout(900)
def test_many_small_refreshes_equal_one_full_rebuild(pipeline: Pipeline, engine: Engine) -> None:
    rng = random.Random(20261205)
    projects = [new_project(engine, slug)[0] for slug in ("inc-a", "inc-b")]
    manifest, translator = pipeline.assets_manifest(), LyticsDbtTranslator()
    sensor = build_raw_data_sensor(
        daily, tables_built_from_raw(manifest, translator), refreshed_models(manifest, translator)
    )
    # Arrival order: shuffled, so later batches hold late events for earlier days and
    # the second half of sessions that began in an earlier batch.
    arrivals: list[tuple[int, dict[str, Any]]] = []
    for project_id in projects:
        for n, event in enumerate(_events(rng)):
            arrivals.append((project_id, {**event, "message_id": f"{project_id}-{n}"}))
    rng.shuffle(arrivals)
    early, late = _returning_across_a_late_day(rng)
    for n, event in enumerate(early):
        arrivals.insert(0, (projects[0], {**event, "message_id": f"gap-early-{n}"}))
    batches = [arrivals[i : i + 60] for i in range(0, len(arrivals), 60)]
    batches.append(
        [(projects[0], {**e, "message_id": f"gap-late-{n}"}) for n, e in enumerate(late)]
    )
    cursor = None
    # The first refresh creates the marts from what is there (a first build takes everything).
    for number, batch in enumerate(batches):
        # Received now, as the API stamps rows it is about to commit.
        received = datetime.now(UTC)
        for project_id in projects:
            rows = [e for p, e in batch if p == project_id]
            if number % 3 == 1 and len(rows) > 1:
                # Committed after the newer rows of the next insert, with an earlier
                # receipt time: found again through the late-commit lookback.
                _insert(engine, project_id, rows[1:], received)
                _insert(engine, project_id, rows[:1], received - timedelta(seconds=30))
            else:
                _insert(engine, project_id, rows, received)
        if number % 4 == 0:
            _insert_metric(engine, projects[0], DAY0 + timedelta(days=number % 3), number, received)
        cursor = _run_sensor_requests(pipeline, sensor, cursor)
    incremental = snapshot(engine)
    assert len(incremental["fct_sessions"]) > 40, "the data should make many sessions"
    gap = [r for r in incremental["daily_visitors"] if r[0] == projects[0] and r[2] == "gap"]
    assert [(r[1], r[-1]) for r in gap] == [
        (DAY0, None),
        (DAY0 + timedelta(days=1), DAY0),
        (DAY0 + timedelta(days=2), DAY0 + timedelta(days=1)),
    ], "the late middle day must become the next day's previous visit"
    assert any(r[-1] is not None for r in incremental["daily_visitors"] if r[2] != "gap")
    assert incremental["daily_kpi_metrics"], "metric pushes should reach the mart"

    # Nothing new: the sensor requests nothing, and a refresh changes nothing.
    assert _run_sensor_requests(pipeline, sensor, cursor) == cursor
    assert pipeline.refresh(DAY0.isoformat()).success
    assert snapshot(engine) == incremental

    # A window rebuild over the incrementally built marts changes nothing either.
    rebuilt = pipeline.build(DAY0.isoformat(), (DAY0 + timedelta(days=2)).isoformat())
    assert rebuilt.success, failures(rebuilt)
    assert snapshot(engine) == incremental

    # And a full rebuild from raw into empty marts gives the same tables.
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA analytics CASCADE"))
    full = pipeline.build(DAY0.isoformat(), (DAY0 + timedelta(days=2)).isoformat())
    assert full.success, failures(full)
    assert snapshot(engine) == incremental

    # A deletion request for a returning visitor of two days apart: erased, then each
    # day rebuilt on its own (the later one first), as the privacy sensor's runs may go.
    person = "back"
    with engine.begin() as conn:
        request = create_request(conn, "inc-b", anonymous_ids=[person], requested_by="test")
    erasure = erase(engine, request.id, "test-erasure")
    assert erasure.event_days == [DAY0, DAY0 + timedelta(days=2)]
    for day in reversed(erasure.event_days):
        rebuilt = pipeline.build(day.isoformat())
        assert rebuilt.success, failures(rebuilt)
    erased = snapshot(engine)
    assert not [r for r in erased["daily_visitors"] if r[0] == projects[1] and r[2] == person]
    assert erased["daily_visitor_recency"] != incremental["daily_visitor_recency"]
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA analytics CASCADE"))
    full = pipeline.build(DAY0.isoformat(), (DAY0 + timedelta(days=2)).isoformat())
    assert full.success, failures(full)
    assert snapshot(engine) == erased
