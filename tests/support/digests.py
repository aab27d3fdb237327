"""Digest test data: mart rows written directly (no dbt run) and project members.

The analytics tables are created here with the columns the digest reads; the
real ones are built by dbt (tests/test_metrics_pipeline.py proves those). Tests
about sending need numbers, not the pipeline that makes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, text

from lytics.digests.weeks import week_period
from lytics.settings import Settings
from tests.support.fake_resend import API_KEY, FakeResend

MARTS = """
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE TABLE IF NOT EXISTS analytics.daily_site_metrics (
    project_id bigint, metric_date date, events bigint, pageviews bigint, unique_visitors bigint,
    conversions bigint, sessions bigint, bounces bigint, avg_session_duration_seconds numeric,
    total_session_duration_seconds numeric);
CREATE TABLE IF NOT EXISTS analytics.daily_visitors (
    project_id bigint, visit_date date, visitor_id text, previous_visit_date date);
CREATE TABLE IF NOT EXISTS analytics.daily_visitor_recency (
    project_id bigint, visit_date date, previous_visit_date date, visitors bigint);
CREATE TABLE IF NOT EXISTS analytics.daily_kpi_metrics (
    project_id bigint, metric_date date, source text, metric_name text, metric_value numeric,
    received_at timestamptz);
CREATE TABLE IF NOT EXISTS analytics.daily_top_referrers (
    project_id bigint, metric_date date, referrer text, sessions bigint, rank bigint);
CREATE TABLE IF NOT EXISTS analytics.daily_top_utm_sources (
    project_id bigint, metric_date date, utm_source text, sessions bigint, rank bigint);
GRANT USAGE ON SCHEMA analytics TO lytics_reader, lytics_pipeline;
GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO lytics_reader, lytics_pipeline;
"""

WEEK = date(2026, 11, 9)  # a Monday; the previous week is 2026-11-02


def create_marts(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(MARTS)


def seed_week(
    engine: Engine,
    project_id: int,
    week: date,
    *,
    sessions: int,
    pageviews: int | None = None,
    conversions: int = 0,
    bounces: int = 0,
    visitors: int | None = None,
    referrers: dict[str, int] | None = None,
    campaigns: dict[str, int] | None = None,
    metrics: dict[str, float] | None = None,
) -> None:
    """Spread a week's totals over its first day (the digest sums the week)."""
    day = week_period(week).start
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO analytics.daily_site_metrics (project_id, metric_date, events, "
                "pageviews, unique_visitors, conversions, sessions, bounces, "
                "avg_session_duration_seconds, total_session_duration_seconds) "
                "VALUES (:p, :d, :pv, :pv, :v, :c, :s, :b, 60, 60 * :s)"
            ),
            {
                "p": project_id,
                "d": day,
                "pv": pageviews if pageviews is not None else sessions * 2,
                "v": visitors or sessions,
                "c": conversions,
                "s": sessions,
                "b": bounces,
            },
        )
        # Each a first visit: one histogram row for the day, as dbt would build it.
        count = visitors if visitors is not None else sessions
        for i in range(count):
            conn.execute(
                text("INSERT INTO analytics.daily_visitors VALUES (:p, :d, :v, NULL)"),
                {"p": project_id, "d": day, "v": f"v{i}"},
            )
        if count:
            conn.execute(
                text("INSERT INTO analytics.daily_visitor_recency VALUES (:p, :d, NULL, :n)"),
                {"p": project_id, "d": day, "n": count},
            )
        for rank, (name, n) in enumerate((referrers or {}).items(), 1):
            conn.execute(
                text("INSERT INTO analytics.daily_top_referrers VALUES (:p, :d, :r, :n, :k)"),
                {"p": project_id, "d": day, "r": name, "n": n, "k": rank},
            )
        for rank, (name, n) in enumerate((campaigns or {}).items(), 1):
            conn.execute(
                text("INSERT INTO analytics.daily_top_utm_sources VALUES (:p, :d, :r, :n, :k)"),
                {"p": project_id, "d": day, "r": name, "n": n, "k": rank},
            )
        for name, value in (metrics or {}).items():
            conn.execute(
                text(
                    "INSERT INTO analytics.daily_kpi_metrics VALUES "
                    "(:p, :d, 'integration', :n, :v, now())"
                ),
                {"p": project_id, "d": day, "n": name, "v": value},
            )


def seed_two_weeks(engine: Engine, project_id: int, week: date = WEEK) -> None:
    seed_week(
        engine,
        project_id,
        week - timedelta(days=7),
        sessions=100,
        conversions=10,
        bounces=30,
        referrers={"news.example.com": 20, "(direct)": 60},
        metrics={"reach": 1000, "engagement": 0.4},
    )
    seed_week(
        engine,
        project_id,
        week,
        sessions=123,
        conversions=8,
        bounces=40,
        referrers={"news.example.com": 41, "(direct)": 62},
        campaigns={"newsletter": 15},
        metrics={"reach": 1500, "engagement": 0.5},
    )


def add_members(
    engine: Engine, project_id: int, emails: Iterable[str], *, enabled: bool = True
) -> list[str]:
    added = []
    with engine.begin() as conn:
        for email in emails:
            user_id: int = conn.execute(
                text(
                    "INSERT INTO app.users (email) VALUES (:e) ON CONFLICT (lower(email)) "
                    "DO UPDATE SET email = excluded.email RETURNING id"
                ),
                {"e": email},
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO app.project_members (project_id, user_id, digest_enabled) "
                    "VALUES (:p, :u, :on)"
                ),
                {"p": project_id, "u": user_id, "on": enabled},
            )
            added.append(email.lower())
    return added


def digest_settings(settings: Settings, fake: FakeResend, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "resend_api_url": fake.base_url,
        "resend_api_key": SecretStr(API_KEY),
        "resend_rate_per_second": 50.0,
        "resend_backoff_seconds": 0.02,
        "digest_cooldown_seconds": 600,
        "public_url": "http://lytics.test",
        "mail_from": "digest@lytics.test",
    }
    values.update(overrides)
    return settings.model_copy(update=values)


def deliveries(engine: Engine, week: date = WEEK) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT recipient, status FROM app.digest_deliveries WHERE period_start = :w "
                "ORDER BY recipient"
            ),
            {"w": week},
        )
        return {r[0]: r[1] for r in rows}
