"""Range tiles (lytics/metrics/tiles.py) from the marts' exact totals, rounded once.

A range's average session duration is sum(total_session_duration_seconds) /
sum(sessions) and its bounce rate sum(bounces) / sum(sessions), each rounded once,
half away from zero like the marts' own round(numeric): never a mean of the days'
rounded values. Both read paths (the digest's SQLAlchemy one and the read API's
async psycopg one) must give the same numbers.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import Connection, Engine, text

from lytics.metrics import tiles
from lytics.metrics.periods import Period
from lytics.settings import Settings
from lytics.warehouse.urls import libpq_dsn
from tests.support.digests import create_marts
from tests.support.ingest import new_project, served_ingest
from tests.support.pipeline import Pipeline, failures, snapshot

# daily_site_metrics rows as dbt writes them: (day, sessions, bounces, the day's rounded
# mean duration, its exact total). Each day's mean is the mart's round(total / sessions, 1).
SITE_DAYS = [
    ("2026-03-02", 1, 1, "176.3", "176.349"),  # 176.349 -> 176.3
    ("2026-03-03", 3, 0, "176.4", "529.050"),  # 120 + 200 + 209.05 s: 176.35 -> 176.4
    ("2026-03-09", 32, 1, "1.3", "40.000"),  # 1.25 -> 1.3; 1 / 32 = 0.03125 -> 0.0313
    ("2026-03-16", 2, 0, "10.0", None),  # built before the mart had its exact total
]


def _site_numbers(engine: Engine, database_url: str, period: Period) -> dict[str, float | None]:
    """One range's site numbers from both paths (the digest's and the read API's)."""
    with engine.connect() as conn:
        sync = tiles.numbers(conn, 1, period).site

    async def read() -> dict[str, float | None]:
        async with await psycopg.AsyncConnection.connect(libpq_dsn(database_url)) as conn:
            return (await tiles.numbers_async(conn, 1, period)).site

    assert asyncio.run(read()) == sync
    return sync


def test_range_tiles_come_from_exact_totals_rounded_once(engine: Engine, database_url: str) -> None:
    create_marts(engine)
    with engine.begin() as conn:
        for day, sessions, bounces, mean, total in SITE_DAYS:
            conn.execute(
                text(
                    "INSERT INTO analytics.daily_site_metrics (project_id, metric_date, events,"
                    " pageviews, unique_visitors, conversions, sessions, bounces,"
                    " avg_session_duration_seconds, total_session_duration_seconds)"
                    " VALUES (1, :d, 0, 0, 0, 0, :s, :b, CAST(:m AS numeric), CAST(:t AS numeric))"
                ),
                {"d": date.fromisoformat(day), "s": sessions, "b": bounces, "m": mean, "t": total},
            )

    two_days = _site_numbers(engine, database_url, Period(date(2026, 3, 2), date(2026, 3, 3)))
    # Exact: (176.349 + 529.050) / 4 = 176.34975 -> 176.3. From the rounded daily means
    # it would be (176.3 + 3 * 176.4) / 4 = 176.375 -> 176.4.
    assert two_days["avg_session_duration_seconds"] == 176.3
    # 1 bounce in 4 sessions, not the mean of the days' rates (1.0 and 0.0).
    assert two_days["bounce_rate"] == 0.25
    assert two_days["sessions"] == 4

    # One day's tile is its mart row, ties included: half away from zero like Postgres'
    # round(numeric), where Python's round() gives 1.2 and 0.0312.
    one_day = _site_numbers(engine, database_url, Period(date(2026, 3, 9), date(2026, 3, 9)))
    assert (one_day["avg_session_duration_seconds"], one_day["bounce_rate"]) == (1.3, 0.0313)
    with engine.connect() as conn:
        mart = conn.execute(
            text("SELECT round(40.000 / 32, 1) AS duration, round(1::numeric / 32, 4) AS rate")
        ).one()
    assert (float(mart.duration), float(mart.rate)) == (1.3, 0.0313)

    # A day without the exact total counts its rounded mean times its sessions.
    old = _site_numbers(engine, database_url, Period(date(2026, 3, 9), date(2026, 3, 16)))
    assert old["avg_session_duration_seconds"] == round((40 + 20) / 34, 1) == 1.8
    assert old["bounce_rate"] == 0.0294  # 1 / 34 = 0.02941...

    empty = _site_numbers(engine, database_url, Period(date(2026, 4, 1), date(2026, 4, 7)))
    assert (empty["avg_session_duration_seconds"], empty["bounce_rate"]) == (None, None)


@pytest.mark.parametrize(
    ("numerator", "denominator", "places", "expected"),
    [(1, 32, 4, 0.0313), (5, 4, 1, 1.3), (1, 3, 4, 0.3333), (2, 3, 1, 0.7), (0, 7, 1, 0.0)],
)
def test_ratio_rounds_half_away_from_zero_like_the_marts(
    numerator: int, denominator: int, places: int, expected: float
) -> None:
    assert tiles.ratio(numerator, denominator, places) == expected


FIRST_DAY = date(2026, 2, 1)
DAYS = 21


def _visits(rng: random.Random) -> dict[str, set[date]]:
    """Visitors and the days they came: once, daily, weekly, in bursts, at random."""
    patterns = [
        lambda: {rng.randrange(DAYS)},
        lambda: set(range(rng.randrange(DAYS), DAYS)),
        lambda: set(range(rng.randrange(7), DAYS, 7)),
        lambda: {d for d in range(DAYS) if rng.random() < 0.3},
        lambda: {0, DAYS - 1},
        lambda: (
            set(range(rng.randrange(DAYS - 3), DAYS)) - {rng.randrange(DAYS)}
        ),  # a streak with a gap
    ]
    visits: dict[str, set[date]] = {}
    for n in range(90):
        days = rng.choice(patterns)() or {rng.randrange(DAYS)}
        visits[f"v{n}"] = {FIRST_DAY + timedelta(days=d) for d in days}
    return visits


@pytest.mark.slow
# Two dbt builds of three weeks on a busy two-core machine.
@pytest.mark.timeout(600)
def test_unique_visitors_over_any_range_equal_the_distinct_visitors(
    pipeline: Pipeline, engine: Engine, database_url: str
) -> None:
    rng = random.Random(20261205)
    project_id = new_project(engine, "ranges")[0]
    visits = _visits(rng)
    with engine.begin() as conn:
        for visitor, days in visits.items():
            for day in days:
                for k in range(rng.randint(1, 3)):
                    at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
                        minutes=rng.randrange(24 * 60)
                    )
                    conn.execute(
                        text(
                            "INSERT INTO raw.events (project_id, message_id, type, anonymous_id,"
                            " timestamp, received_at, path, source, payload) VALUES"
                            " (:p, :m, 'page', :v, :at, now(), '/', 'native', '{}')"
                        ),
                        {"p": project_id, "m": f"{visitor}-{day}-{k}", "v": visitor, "at": at},
                    )
    last_day = FIRST_DAY + timedelta(days=DAYS - 1)
    built = pipeline.build(FIRST_DAY.isoformat(), last_day.isoformat())
    assert built.success, failures(built)

    def distinct(conn: Connection, period: Period) -> int:
        return int(
            conn.execute(
                text(
                    "SELECT count(DISTINCT visitor_id) FROM analytics.daily_visitors"
                    " WHERE project_id = :p AND visit_date BETWEEN :a AND :b"
                ),
                {"p": project_id, "a": period.start, "b": period.end},
            ).scalar_one()
        )

    # Ranges inside the data, overlapping its edges, of one day, and before any data.
    periods = [Period(FIRST_DAY, last_day), Period(FIRST_DAY - timedelta(days=5), FIRST_DAY)]
    for _ in range(150):
        start = FIRST_DAY + timedelta(days=rng.randrange(-3, DAYS + 2))
        periods.append(Period(start, start + timedelta(days=rng.choice([0, 1, 3, 6, 13, 27]))))
    with engine.connect() as conn:
        for period in periods:
            expected = sum(
                1 for days in visits.values() if any(period.start <= d <= period.end for d in days)
            )
            assert distinct(conn, period) == expected, period
            found = tiles.numbers(conn, project_id, period).site["unique_visitors"]
            assert found == expected, period
        assert any(
            tiles.numbers(conn, project_id, p).site["unique_visitors"]
            < conn.execute(
                text(
                    "SELECT coalesce(sum(unique_visitors), 0) FROM analytics.daily_site_metrics"
                    " WHERE project_id = :p AND metric_date BETWEEN :a AND :b"
                ),
                {"p": project_id, "a": p.start, "b": p.end},
            ).scalar_one()
            for p in periods
        ), "the data should have visitors who return within a range"

    # An upgrade from before previous_visit_date: daily_visitors lacks the column and
    # the recency mart does not exist. The next refresh, with nothing new to fold in,
    # must fill every row (a null would count a returning visitor as new).
    built_marts = snapshot(engine, ["daily_visitors", "daily_visitor_recency"])
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE analytics.daily_visitors DROP COLUMN previous_visit_date"))
        conn.execute(text("DROP TABLE analytics.daily_visitor_recency"))
    upgraded = pipeline.refresh(last_day.isoformat())
    assert upgraded.success, failures(upgraded)
    assert snapshot(engine, ["daily_visitors", "daily_visitor_recency"]) == built_marts

    # The read API's path gives the same numbers.
    async def read(period: Period) -> float | None:
        async with await psycopg.AsyncConnection.connect(libpq_dsn(database_url)) as conn:
            return (await tiles.numbers_async(conn, project_id, period)).site["unique_visitors"]

    with engine.connect() as conn:
        for period in periods[:20]:
            assert (
                asyncio.run(read(period))
                == tiles.numbers(conn, project_id, period).site["unique_visitors"]
            )


def test_tiles_say_not_built_until_the_visitor_recency_mart_exists(
    settings: Settings, engine: Engine
) -> None:
    """An upgrade before its first refresh: daily_site_metrics is there, the new mart
    is not. The tiles say so rather than count visitors some other way."""
    create_marts(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE analytics.daily_visitor_recency"))
    with served_ingest(settings, engine) as api:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO analytics.daily_site_metrics (project_id, metric_date, events,"
                    " pageviews, unique_visitors, conversions, sessions, bounces)"
                    " VALUES (:p, '2026-03-02', 5, 5, 2, 0, 2, 0)"
                ),
                {"p": api.project_id},
            )
        params = {"from": "2026-03-01", "to": "2026-03-07"}
        before = api.get("/v1/dashboard/tiles", params=params, headers=api.bearer())
        assert before.status_code == 200
        assert before.json()["built"] is False
        assert {t["value"] for t in before.json()["tiles"]} == {None}

        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE analytics.daily_visitor_recency (project_id bigint,"
                    " visit_date date, previous_visit_date date, visitors bigint)"
                )
            )
            conn.execute(text("GRANT SELECT ON analytics.daily_visitor_recency TO lytics_reader"))
            conn.execute(
                text(
                    "INSERT INTO analytics.daily_visitor_recency VALUES (:p, '2026-03-02', NULL, 2)"
                ),
                {"p": api.project_id},
            )
        after = api.get("/v1/dashboard/tiles", params=params, headers=api.bearer()).json()
        assert after["built"] is True
        shown = {t["key"]: t["value"] for t in after["tiles"]}
        assert (shown["unique_visitors"], shown["pageviews"]) == (2, 5)
