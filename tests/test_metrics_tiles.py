"""Range tiles (lytics/metrics/tiles.py) from the marts' exact totals, rounded once.

A range's average session duration is sum(total_session_duration_seconds) /
sum(sessions) and its bounce rate sum(bounces) / sum(sessions), each rounded once,
half away from zero like the marts' own round(numeric): never a mean of the days'
rounded values. Both read paths (the digest's SQLAlchemy one and the read API's
async psycopg one) must give the same numbers.
"""

from __future__ import annotations

import asyncio
from datetime import date

import psycopg
import pytest
from sqlalchemy import Engine, text

from lytics.metrics import tiles
from lytics.metrics.periods import Period
from lytics.warehouse.urls import libpq_dsn
from tests.support.digests import create_marts

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
