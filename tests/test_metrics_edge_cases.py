"""The marts on the edge cases of docs/metrics.md, row for row.

Raw rows go straight into raw.events and raw.metrics with exact timestamps, dbt
builds the marts through Dagster (Pipeline.build), and each test compares whole
mart rows with values worked out by hand here, never with another query: a
30:00 gap and a 30:01 gap, a session across UTC midnight, SDK session ids
interleaved with events without one, one session id shared by two visitors,
ties at the top-N cut, a re-sent pushed metric and referrer host normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.support.ingest import new_project
from tests.support.pipeline import Pipeline, failures

pytestmark = pytest.mark.slow

DAY = "2025-06-10"
NEXT_DAY = "2025-06-11"


def build(pipeline: Pipeline, first_day: str, last_day: str | None = None) -> None:
    result = pipeline.build(first_day, last_day)
    assert result.success, failures(result)


def at(moment: str) -> datetime:
    """'2025-06-10 10:30:00.001' as a UTC instant."""
    return datetime.fromisoformat(moment).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Event:
    """One raw.events row: the columns the marts read, the rest left at their defaults."""

    moment: str
    visitor: str | None
    type: str = "page"
    path: str | None = None
    session: str | None = None
    name: str | None = None
    user: str | None = None
    referrer: str | None = None
    utm_source: str | None = None


def insert_events(engine: Engine, project_id: int, events: list[Event]) -> None:
    rows = [
        {
            "project": project_id,
            "message": f"m{i}",
            "type": e.type,
            "name": e.name,
            "anonymous": e.visitor,
            "user": e.user,
            "session": e.session,
            "at": at(e.moment),
            "url": f"https://site.example{e.path}" if e.path else None,
            "path": e.path,
            "referrer": e.referrer,
            "utm": e.utm_source,
        }
        for i, e in enumerate(events)
    ]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.events (project_id, message_id, type, event, anonymous_id,"
                " user_id, session_id, timestamp, original_timestamp, url, path, referrer,"
                " utm_source, source, payload) VALUES (:project, :message, :type, :name,"
                " :anonymous, :user, :session, :at, :at, :url, :path, :referrer, :utm,"
                " 'native', '{}')"
            ),
            rows,
        )


def rows(engine: Engine, sql: str, project_id: int) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), {"p": project_id})]


# Whole rows of each mart (explicit columns, so a renamed column fails loudly),
# in a fixed order; days as text, keys in byte order.
SESSIONS = """
SELECT session_date::text, session_key, visitor_id, started_at, ended_at, duration_seconds,
       events, pageviews, is_bounce, landing_path, referrer_host, utm_source
FROM analytics.fct_sessions WHERE project_id = :p
ORDER BY session_date, session_key COLLATE "C"
"""
SITE = """
SELECT metric_date::text, events, pageviews, unique_visitors, sessions, bounces, bounce_rate,
       avg_session_duration_seconds, total_session_duration_seconds, conversions
FROM analytics.daily_site_metrics WHERE project_id = :p ORDER BY metric_date
"""
VISITORS = """
SELECT visit_date::text, visitor_id, events, pageviews, conversions
FROM analytics.daily_visitors WHERE project_id = :p ORDER BY visit_date, visitor_id COLLATE "C"
"""
TOP_PAGES = """
SELECT metric_date::text, rank, path, pageviews, visitors
FROM analytics.daily_top_pages WHERE project_id = :p ORDER BY metric_date, rank
"""
TOP_REFERRERS = """
SELECT metric_date::text, rank, referrer, sessions
FROM analytics.daily_top_referrers WHERE project_id = :p ORDER BY metric_date, rank
"""
TOP_UTM = """
SELECT metric_date::text, rank, utm_source, sessions
FROM analytics.daily_top_utm_sources WHERE project_id = :p ORDER BY metric_date, rank
"""
KPIS = """
SELECT metric_date::text, source, metric_name, metric_value, received_at
FROM analytics.daily_kpi_metrics WHERE project_id = :p
ORDER BY metric_date, source COLLATE "C", metric_name COLLATE "C"
"""

D = Decimal


def session(  # noqa: PLR0917 - one argument per column, in the row's order
    day: str,
    key: str,
    visitor: str,
    start: str,
    end: str,
    duration: str,
    events: int,
    pageviews: int,
    bounce: bool,
    landing: str | None,
    referrer: str | None = None,
    utm_source: str | None = None,
) -> tuple[Any, ...]:
    """An expected fct_sessions row (SESSIONS' columns); times of day on `day`, UTC."""
    return (
        day,
        key,
        visitor,
        at(f"{day} {start}"),
        at(f"{day} {end}"),
        D(duration),
        events,
        pageviews,
        bounce,
        landing,
        referrer,
        utm_source,
    )


def test_a_gap_of_exactly_30_minutes_stays_in_the_session_and_a_longer_one_splits(
    pipeline: Pipeline, engine: Engine
) -> None:
    project, _, _ = new_project(engine, "gaps")
    insert_events(
        engine,
        project,
        [
            # a: exactly 30:00 between two events, one session.
            Event(f"{DAY} 10:00:00", "a", path="/a1"),
            Event(f"{DAY} 10:30:00", "a", path="/a2"),
            # b: 30:01, two sessions.
            Event(f"{DAY} 10:00:00", "b", path="/b1"),
            Event(f"{DAY} 10:30:01", "b", path="/b2"),
            # c: the timeout is between consecutive events: 60 minutes, one session.
            Event(f"{DAY} 10:00:00", "c", path="/c1"),
            Event(f"{DAY} 10:30:00", "c", path="/c2"),
            Event(f"{DAY} 11:00:00", "c", path="/c3"),
            # d: 30 minutes and a millisecond is more than 30 minutes.
            Event(f"{DAY} 10:00:00", "d", path="/d1"),
            Event(f"{DAY} 10:30:00.001", "d", path="/d2"),
        ],
    )
    build(pipeline, DAY)

    assert rows(engine, SESSIONS, project) == [
        session(DAY, "inf:a:1", "a", "10:00:00", "10:30:00", "1800", 2, 2, False, "/a1"),
        session(DAY, "inf:b:1", "b", "10:00:00", "10:00:00", "0", 1, 1, True, "/b1"),
        session(DAY, "inf:b:2", "b", "10:30:01", "10:30:01", "0", 1, 1, True, "/b2"),
        session(DAY, "inf:c:1", "c", "10:00:00", "11:00:00", "3600", 3, 3, False, "/c1"),
        session(DAY, "inf:d:1", "d", "10:00:00", "10:00:00", "0", 1, 1, True, "/d1"),
        session(DAY, "inf:d:2", "d", "10:30:00.001", "10:30:00.001", "0", 1, 1, True, "/d2"),
    ]
    # 9 events, 4 visitors, 6 sessions of which 4 are single pageviews (4/6 = 0.66667);
    # durations 1800 + 0 + 0 + 3600 + 0 + 0 = 5400 s, 900 s a session.
    assert rows(engine, SITE, project) == [
        (DAY, 9, 9, 4, 6, 4, D("0.6667"), D("900.0"), D("5400"), 0)
    ]
    assert rows(engine, VISITORS, project) == [
        (DAY, "a", 2, 2, 0),
        (DAY, "b", 2, 2, 0),
        (DAY, "c", 3, 3, 0),
        (DAY, "d", 2, 2, 0),
    ]
    # Nine paths with one pageview each: all in the top 10, by path.
    paths = ["/a1", "/a2", "/b1", "/b2", "/c1", "/c2", "/c3", "/d1", "/d2"]
    assert rows(engine, TOP_PAGES, project) == [
        (DAY, rank, path, 1, 1) for rank, path in enumerate(paths, 1)
    ]
    assert rows(engine, TOP_REFERRERS, project) == [(DAY, 1, "(direct)", 6)]
    assert rows(engine, TOP_UTM, project) == []


def test_a_session_across_midnight_is_two_sessions_one_per_day(
    pipeline: Pipeline, engine: Engine
) -> None:
    project, _, _ = new_project(engine, "midnight")
    insert_events(
        engine,
        project,
        [
            # m, no session id: 23:50 and 23:59:59.999, then 1 ms later on the next day.
            Event(f"{DAY} 23:50:00", "m", path="/m1"),
            Event(f"{DAY} 23:59:59.999", "m", path="/m2"),
            Event(f"{NEXT_DAY} 00:00:00", "m", path="/m3"),
            Event(f"{NEXT_DAY} 00:20:00", "m", path="/m4"),
            # n, with an SDK session id across midnight: the id is split too.
            Event(f"{DAY} 23:55:00", "n", path="/n1", session="night"),
            Event(f"{NEXT_DAY} 00:10:00", "n", type="track", name="Signed Up", session="night"),
        ],
    )
    build(pipeline, DAY, NEXT_DAY)

    assert rows(engine, SESSIONS, project) == [
        session(DAY, "inf:m:1", "m", "23:50:00", "23:59:59.999", "599.999", 2, 2, False, "/m1"),
        session(DAY, "sid:night", "n", "23:55:00", "23:55:00", "0", 1, 1, True, "/n1"),
        # Numbering starts again every day: the day's first inferred session is 1.
        session(NEXT_DAY, "inf:m:1", "m", "00:00:00", "00:20:00", "1200", 2, 2, False, "/m3"),
        # A session without a pageview: no landing path, and not a bounce.
        session(NEXT_DAY, "sid:night", "n", "00:10:00", "00:10:00", "0", 1, 0, False, None),
    ]
    assert rows(engine, SITE, project) == [
        # (599.999 + 0) / 2 = 299.9995 -> 300.0
        (DAY, 3, 3, 2, 2, 1, D("0.5"), D("300.0"), D("599.999"), 0),
        (NEXT_DAY, 3, 2, 2, 2, 0, D("0"), D("600.0"), D("1200"), 1),
    ]
    assert rows(engine, VISITORS, project) == [
        (DAY, "m", 2, 2, 0),
        (DAY, "n", 1, 1, 0),
        (NEXT_DAY, "m", 2, 2, 0),
        (NEXT_DAY, "n", 1, 0, 1),
    ]
    assert rows(engine, TOP_REFERRERS, project) == [
        (DAY, 1, "(direct)", 2),
        (NEXT_DAY, 1, "(direct)", 2),
    ]


def test_events_with_and_without_session_ids_interleaved(
    pipeline: Pipeline, engine: Engine
) -> None:
    project, _, _ = new_project(engine, "mixed")
    insert_events(
        engine,
        project,
        [
            Event(f"{DAY} 10:00:00", "v", path="/1"),
            Event(f"{DAY} 10:05:00", "v", path="/2", session="S1"),
            Event(f"{DAY} 10:10:00", "v", path="/3"),
            Event(f"{DAY} 10:50:00", "v", type="track", name="Clicked", session="S1"),
            # 50 minutes after /3: the SDK's event at 10:50 does not keep the inferred
            # session alive, events without an id are sessionised among themselves.
            Event(f"{DAY} 11:00:00", "v", path="/4"),
            Event(f"{DAY} 11:20:00", "v", path="/5", session="S2"),
        ],
    )
    build(pipeline, DAY)

    assert rows(engine, SESSIONS, project) == [
        session(DAY, "inf:v:1", "v", "10:00:00", "10:10:00", "600", 2, 2, False, "/1"),
        session(DAY, "inf:v:2", "v", "11:00:00", "11:00:00", "0", 1, 1, True, "/4"),
        session(DAY, "sid:S1", "v", "10:05:00", "10:50:00", "2700", 2, 1, False, "/2"),
        session(DAY, "sid:S2", "v", "11:20:00", "11:20:00", "0", 1, 1, True, "/5"),
    ]
    # 4 sessions, 2 bounces; (600 + 0 + 2700 + 0) / 4 = 825 s.
    assert rows(engine, SITE, project) == [(DAY, 6, 5, 1, 4, 2, D("0.5"), D("825.0"), D("3300"), 0)]
    assert rows(engine, VISITORS, project) == [(DAY, "v", 6, 5, 0)]


def test_one_session_id_shared_by_two_visitors_is_one_session(
    pipeline: Pipeline, engine: Engine
) -> None:
    project, _, _ = new_project(engine, "shared")
    other, _, _ = new_project(engine, "other")
    insert_events(
        engine,
        project,
        [
            Event(
                f"{DAY} 09:00:00",
                "zed",
                path="/z",
                session="shared",
                referrer="https://z.example/",
                utm_source="zmail",
            ),
            Event(
                f"{DAY} 09:10:00",
                "amy",
                path="/a",
                session="shared",
                referrer="https://a.example/",
                utm_source="amail",
            ),
            # Identified only: the visitor is "user:42".
            Event(
                f"{DAY} 09:20:00",
                None,
                type="track",
                name="Purchase",
                user="42",
                session="shared",
            ),
        ],
    )
    # The same id in another project is another session.
    insert_events(engine, other, [Event(f"{DAY} 09:05:00", "bob", path="/b", session="shared")])
    build(pipeline, DAY)

    # The smallest visitor id; landing path, referrer and campaign of the first event.
    assert rows(engine, SESSIONS, project) == [
        session(
            DAY,
            "sid:shared",
            "amy",
            "09:00:00",
            "09:20:00",
            "1200",
            3,
            2,
            False,
            "/z",
            "z.example",
            "zmail",
        ),
    ]
    # Three visitors, one session.
    assert rows(engine, SITE, project) == [(DAY, 3, 2, 3, 1, 0, D("0"), D("1200.0"), D("1200"), 1)]
    assert rows(engine, VISITORS, project) == [
        (DAY, "amy", 1, 1, 0),
        (DAY, "user:42", 1, 0, 1),
        (DAY, "zed", 1, 1, 0),
    ]
    assert rows(engine, TOP_REFERRERS, project) == [(DAY, 1, "z.example", 1)]
    assert rows(engine, TOP_UTM, project) == [(DAY, 1, "zmail", 1)]
    assert rows(engine, SESSIONS, other) == [
        session(DAY, "sid:shared", "bob", "09:05:00", "09:05:00", "0", 1, 1, True, "/b"),
    ]


def test_ties_at_the_top_n_cut_go_to_the_name_that_sorts_first(
    pipeline: Pipeline, engine: Engine
) -> None:
    project, _, _ = new_project(engine, "ties")
    # A clear leader (3 pageviews of /top by 2 visitors, in 2 sessions from big.example
    # with utm_source newsletter), then 11 one-session visitors, each with its own
    # path, referrer host and campaign: one pageview or session each, 11 tied for the
    # last 9 places. They are inserted, and their visitor ids run, in the reverse of
    # the names' order, so neither insertion order nor visitor can pass for the rule.
    events = [
        Event(
            f"{DAY} 10:00:00",
            "v01",
            path="/top",
            referrer="https://big.example/",
            utm_source="newsletter",
        ),
        Event(f"{DAY} 10:01:00", "v01", path="/top"),
        Event(
            f"{DAY} 10:00:00",
            "v02",
            path="/top",
            referrer="https://big.example/a",
            utm_source="newsletter",
        ),
    ]
    for i in reversed(range(11)):
        events.append(
            Event(
                f"{DAY} 10:00:00",
                f"v{13 - i:02}",
                path=f"/p{i:02}",
                referrer=f"https://r{i:02}.example/",
                utm_source=f"u{i:02}",
            )
        )
    insert_events(engine, project, events)
    build(pipeline, DAY)

    assert rows(engine, TOP_PAGES, project) == [(DAY, 1, "/top", 3, 2)] + [
        (DAY, 2 + i, f"/p{i:02}", 1, 1) for i in range(9)
    ]
    assert rows(engine, TOP_REFERRERS, project) == [(DAY, 1, "big.example", 2)] + [
        (DAY, 2 + i, f"r{i:02}.example", 1) for i in range(9)
    ]
    assert rows(engine, TOP_UTM, project) == [(DAY, 1, "newsletter", 2)] + [
        (DAY, 2 + i, f"u{i:02}", 1) for i in range(9)
    ]
    # 14 pageviews, 13 visitors in 13 sessions, all single pageviews but v01's
    # (12/13 = 0.923077); one 60 s session, 60 / 13 = 4.615 s.
    assert rows(engine, SITE, project) == [
        (DAY, 14, 14, 13, 13, 12, D("0.9231"), D("4.6"), D("60"), 0)
    ]


def test_a_re_sent_pushed_metric_takes_the_newest_value(pipeline: Pipeline, engine: Engine) -> None:
    project, _, _ = new_project(engine, "pushed")
    early, late = at(f"{NEXT_DAY} 08:00:00"), at(f"{NEXT_DAY} 09:00:00")
    pushes = [
        # The newer push first: the newest receipt wins, not the larger id.
        ("ga", "reach", "120", DAY, late),
        ("ga", "reach", "100", DAY, early),
        # Received at the same instant: the later row (larger id) wins.
        ("ga", "engagement", "0.4", DAY, early),
        ("ga", "engagement", "0.45", DAY, early),
        # Another source is another metric; another day another row.
        ("ads", "reach", "7", DAY, early),
        ("ga", "reach", "50", NEXT_DAY, early),
    ]
    with engine.begin() as conn:
        for source, name, value, day, received in pushes:
            conn.execute(
                text(
                    "INSERT INTO raw.metrics (project_id, source, metric_name, metric_value,"
                    " metric_date, received_at) VALUES (:p, :s, :n, CAST(:v AS numeric), :d, :r)"
                ),
                {"p": project, "s": source, "n": name, "v": value, "d": day, "r": received},
            )
    build(pipeline, DAY, NEXT_DAY)
    assert rows(engine, KPIS, project) == [
        (DAY, "ads", "reach", D("7"), early),
        (DAY, "ga", "engagement", D("0.45"), early),
        (DAY, "ga", "reach", D("120"), late),
        (NEXT_DAY, "ga", "reach", D("50"), early),
    ]

    # Re-sent after the build (received now): the sensor's incremental refresh takes
    # the new value, and a rebuild of the day keeps it.
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.metrics (project_id, source, metric_name, metric_value,"
                " metric_date) VALUES (:p, 'ga', 'reach', 130, :d)"
            ),
            {"p": project, "d": DAY},
        )
        resent_at = conn.execute(
            text("SELECT received_at FROM raw.metrics WHERE metric_value = 130")
        ).scalar_one()
    resent = [
        (DAY, "ads", "reach", D("7"), early),
        (DAY, "ga", "engagement", D("0.45"), early),
        (DAY, "ga", "reach", D("130"), resent_at),
        (NEXT_DAY, "ga", "reach", D("50"), early),
    ]
    refreshed = pipeline.refresh(DAY)
    assert refreshed.success, failures(refreshed)
    assert rows(engine, KPIS, project) == resent
    build(pipeline, DAY)
    assert rows(engine, KPIS, project) == resent


def test_referrer_hosts_are_normalised_and_campaigns_are_the_first_one_sent(
    pipeline: Pipeline, engine: Engine
) -> None:
    project, _, _ = new_project(engine, "referrers")
    referrers: list[tuple[str, str | None, str | None]] = [
        ("v01", "https://www.Example.com/path", "spring"),  # -> example.com
        ("v02", "HTTP://EXAMPLE.COM:8080/x", "Spring"),  # -> example.com; campaigns keep case
        ("v03", "https://example.com", None),  # -> example.com
        ("v04", "https://news.example.com:443/item?id=1", None),  # -> news.example.com
        ("v05", "example.com/no-scheme", None),  # no scheme: no host, (direct)
        ("v06", "", None),  # -> (direct)
        ("v07", None, None),  # -> (direct)
        ("v09", "https://www.www.example.org/", None),  # one "www." goes -> www.example.org
        ("v10", "android-app://com.google.android.gm/", None),  # any scheme
    ]
    events = [
        Event(f"{DAY} 10:00:00", v, path="/", referrer=r, utm_source=u) for v, r, u in referrers
    ]
    # v08's first event has no referrer and no campaign, its second both: the session's
    # referrer is its first event's (none), its campaign the first one sent.
    events += [
        Event(f"{DAY} 10:00:00", "v08", path="/"),
        Event(
            f"{DAY} 10:05:00",
            "v08",
            path="/next",
            referrer="https://later.example/",
            utm_source="spring",
        ),
    ]
    insert_events(engine, project, events)
    build(pipeline, DAY)

    with engine.connect() as conn:
        sessions = conn.execute(
            text(
                "SELECT visitor_id, referrer_host, utm_source FROM analytics.fct_sessions"
                " WHERE project_id = :p ORDER BY visitor_id"
            ),
            {"p": project},
        ).all()
    assert [tuple(s) for s in sessions] == [
        ("v01", "example.com", "spring"),
        ("v02", "example.com", "Spring"),
        ("v03", "example.com", None),
        ("v04", "news.example.com", None),
        ("v05", None, None),
        ("v06", None, None),
        ("v07", None, None),
        ("v08", None, "spring"),
        ("v09", "www.example.org", None),
        ("v10", "com.google.android.gm", None),
    ]
    assert rows(engine, TOP_REFERRERS, project) == [
        (DAY, 1, "(direct)", 4),
        (DAY, 2, "example.com", 3),
        (DAY, 3, "com.google.android.gm", 1),
        (DAY, 4, "news.example.com", 1),
        (DAY, 5, "www.example.org", 1),
    ]
    assert rows(engine, TOP_UTM, project) == [(DAY, 1, "spring", 2), (DAY, 2, "Spring", 1)]
