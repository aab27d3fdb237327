"""The weekly digest on marts that dbt built from raw rows, not on hand-made tables.

Every other digest test reads mart tables written by tests/support/digests.py, so a
mart column renamed in dbt would go unnoticed there. Here two weeks of raw events
and pushed metrics go through Pipeline.build, and the digest's tiles, insights,
action items and rendered text are compared with numbers worked out by hand.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, text

from lytics.digests import content
from lytics.digests.render import render
from tests.support.ingest import new_project
from tests.support.pipeline import Pipeline, failures

WEEK = date(2025, 6, 9)  # a Monday; the week before starts on 2025-06-02

# (day and time, visitor, path, referrer, utm_source, track event name); page views
# unless an event name is given.
Row = tuple[str, str, str | None, str | None, str | None, str | None]
EVENTS: list[Row] = [
    # The week before, all on Tuesday 2025-06-03: 4 sessions, 8 pageviews, 4 visitors,
    # 1 conversion; 2 sessions from news.example.com, 2 direct; 2 bounces.
    ("2025-06-03 10:00:00", "p1", "/", "https://news.example.com/a", None, None),
    ("2025-06-03 10:00:00", "p2", "/", "https://news.example.com/b", None, None),
    ("2025-06-03 10:01:00", "p2", "/pricing", None, None, None),
    ("2025-06-03 10:02:00", "p2", "/signup", None, None, None),
    ("2025-06-03 10:03:00", "p2", None, None, None, "Signed Up"),
    ("2025-06-03 11:00:00", "p3", "/", None, None, None),
    ("2025-06-03 11:00:00", "p4", "/", None, None, None),
    ("2025-06-03 11:05:00", "p4", "/docs", None, None, None),
    ("2025-06-03 11:10:00", "p4", "/docs/start", None, None, None),
    # The week: Tuesday 2025-06-10, 3 sessions from news.example.com in three spellings,
    # two of them with utm_source newsletter (a campaign new this week).
    ("2025-06-10 09:00:00", "t1", "/", "https://www.News.Example.com/x", "newsletter", None),
    ("2025-06-10 09:00:00", "t2", "/", "https://news.example.com:443/", None, None),
    ("2025-06-10 09:00:00", "t3", "/", "https://news.example.com/", "newsletter", None),
    # Thursday 2025-06-12: 4 sessions (t1 again, direct), one from news.example.com.
    ("2025-06-12 09:00:00", "t4", "/", "https://news.example.com/", None, None),
    ("2025-06-12 09:00:00", "t5", "/", None, None, None),
    ("2025-06-12 09:02:00", "t5", "/blog", None, None, None),
    ("2025-06-12 09:00:00", "t6", "/", None, None, None),
    ("2025-06-12 18:00:00", "t1", "/", None, None, None),
]
# (metric_date, value, received_at): reach, pushed once the week before and twice this
# week (the second push, 1050, replaces the first).
REACH = [
    ("2025-06-03", 1000, "2025-06-04 06:00:00"),
    ("2025-06-10", 1200, "2025-06-11 06:00:00"),
    ("2025-06-10", 1050, "2025-06-11 07:00:00"),
]


def _utc(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=UTC)


def _load(engine: Engine, project_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.events (project_id, message_id, type, event, anonymous_id,"
                " timestamp, original_timestamp, path, referrer, utm_source, source, payload)"
                " VALUES (:p, :m, :type, :name, :v, :at, :at, :path, :ref, :utm, 'native', '{}')"
            ),
            [
                {
                    "p": project_id,
                    "m": f"m{i}",
                    "type": "track" if name else "page",
                    "name": name,
                    "v": visitor,
                    "at": _utc(moment),
                    "path": path,
                    "ref": referrer,
                    "utm": utm,
                }
                for i, (moment, visitor, path, referrer, utm, name) in enumerate(EVENTS)
            ],
        )
        conn.execute(
            text(
                "INSERT INTO raw.metrics (project_id, source, metric_name, metric_value,"
                " metric_date, received_at) VALUES (:p, 'social', 'reach', :v, :d, :r)"
            ),
            [
                {"p": project_id, "v": value, "d": date.fromisoformat(day), "r": _utc(received)}
                for day, value, received in REACH
            ],
        )


@pytest.mark.slow
def test_the_digest_of_a_week_built_by_dbt(pipeline: Pipeline, engine: Engine) -> None:
    project_id, _, _ = new_project(engine, "weekly")
    _load(engine, project_id)
    # Both weeks in one run, Monday 2025-06-02 to Sunday 2025-06-15.
    result = pipeline.build("2025-06-02", "2025-06-15")
    assert result.success, failures(result)

    with engine.connect() as conn:
        digest = content.build(conn, content.project_info(conn, project_id), WEEK)

    assert digest.has_data
    tiles = [(t.key, t.value, t.previous, t.change_pct) for t in digest.tiles]
    assert tiles == [
        ("sessions", 7, 4, 75.0),
        ("pageviews", 8, 8, 0.0),
        # t1 came on two days: 6 distinct visitors, not 3 + 4.
        ("unique_visitors", 6, 4, 50.0),
        ("conversions", 0, 1, -100.0),
        ("reach", 1050.0, 1000.0, 5.0),
    ]
    # news.example.com: 2 sessions before, 4 now (+2); direct: 2 before, 3 now (+1).
    assert digest.insights == [
        "Sessions up 75 % (7 vs 4), driven by referrals from news.example.com (+2 sessions)",
        "Unique visitors up 50 % (6 vs 4)",
        "Conversions down 100 % (0 vs 1)",
        "New campaign source newsletter brought 2 sessions",
    ]
    # 6 of the week's 7 sessions are single pageviews (t5's is not): 0.8571.
    assert digest.actions == [
        "Traffic grew while conversions fell: check the pages new visitors land on "
        "and the steps before a conversion.",
        "No conversions were recorded: make sure your conversion events are tracked "
        "and listed in the project's conversion_events.",
        "86% of sessions bounced: review the landing pages of your top referrers.",
    ]

    message = render(
        digest, sender="digest@lytics.test", recipient="ann@example.com", unsubscribe_url="u"
    )
    assert message.subject == "weekly: your weekly digest (Week of Jun 9 \u2013 Jun 15, 2025)"
    for line in (
        "Sessions: 7 (\u25b2 75.0 %; last week 4)",
        "Pageviews: 8 (unchanged; last week 8)",
        "Unique visitors: 6 (\u25b2 50.0 %; last week 4)",
        "Conversions: 0 (\u25bc 100.0 %; last week 1)",
        "Reach: 1,050 (\u25b2 5.0 %; last week 1,000)",
        "- New campaign source newsletter brought 2 sessions",
        "3. 86% of sessions bounced: review the landing pages of your top referrers.",
    ):
        assert line in message.text.splitlines(), line
