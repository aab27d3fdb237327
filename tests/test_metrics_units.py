"""Small, exact pieces of the metrics pipeline: periods, changes, cursors, anomalies."""

from __future__ import annotations

from datetime import date

import jinja2
import pytest
from sqlalchemy import Engine, text

from lytics.metrics.changes import Cursor, changed_days
from lytics.metrics.periods import Period, change_percent
from lytics_assets.metrics.partitions import daily
from lytics_assets.metrics.project import DBT_DIR
from lytics_assets.metrics.requests import modelled_days, range_request


def test_period_and_previous_period() -> None:
    week = Period(date(2026, 3, 2), date(2026, 3, 8))
    assert week.days == 7
    assert week.previous() == Period(date(2026, 2, 23), date(2026, 3, 1))
    with pytest.raises(ValueError, match="ends before"):
        Period(date(2026, 3, 2), date(2026, 3, 1))
    with pytest.raises(ValueError, match="at most"):
        Period(date(2024, 1, 1), date(2026, 1, 1))


@pytest.mark.parametrize(
    ("now", "before", "expected"),
    [(123, 100, 23.0), (50, 100, -50.0), (5, 0, None), (None, 3, None), (3, None, None)],
)
def test_change_percent(now: float | None, before: float | None, expected: float | None) -> None:
    assert change_percent(now, before) == expected


def test_cursor_round_trip_and_changed_days(engine: Engine) -> None:
    assert Cursor.parse(None) == Cursor()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw.events (project_id, message_id, type, timestamp, source, payload) "
                "VALUES (1, 'a', 'track', '2026-03-01T23:59:59Z', 'native', '{}'),"
                "       (1, 'b', 'track', '2026-03-02T00:00:00Z', 'native', '{}')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO raw.metrics"
                " (project_id, source, metric_name, metric_value, metric_date)"
                " VALUES (1, 's', 'reach', 1, '2026-02-20')"
            )
        )
        changes = changed_days(conn, Cursor())
        assert changes.days == {date(2026, 3, 1), date(2026, 3, 2), date(2026, 2, 20)}
        # The sensor refreshes only what is built from these two tables.
        assert changes.tables == {"events", "metrics"}
        again = changed_days(conn, Cursor.parse(changes.cursor.serialize()))
        assert again.days == frozenset()
        assert again.key == changes.key  # same data, same run key


def test_requests_cover_the_range_of_modelled_days() -> None:
    days = [date(2026, 3, 3), date(1999, 1, 1), date(2026, 3, 1)]
    keys = modelled_days(days, daily)
    assert keys == ["2026-03-01", "2026-03-03"]  # 1999 is before the partitions start
    request = range_request(keys, "raw:x", "refresh_metrics")
    assert request.tags == {
        "dagster/asset_partition_range_start": "2026-03-01",
        "dagster/asset_partition_range_end": "2026-03-03",
    }
    assert range_request(keys[:1], "raw:y", "refresh_metrics").partition_key == "2026-03-01"


# The regex form of url_host that the macro's cheaper string functions replace.
REGEX_HOST = (
    "nullif(lower(regexp_replace(substring(u from '^[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#:]+)'),"
    " '^www\\.', '')), '')"
)
AWKWARD_URLS = [
    "https://google.com/",
    "https://www.Google.com/search?q=a://b",
    "HTTP://WWW.EXAMPLE.ORG",
    "https://news.ycombinator.com:443/item?id=1",
    "https://user:pw@host.example/path",
    "https://host.example?x=1",
    "https://host.example#frag",
    "android-app://com.google.android.gm/",
    "git+ssh://repo.example/x",
    "1http://bad.example/",
    "http:/one-slash.example",
    "://no-scheme.example",
    "https://",
    "https:///path-only",
    "https://www.",
    "https://www.www.example.com/",
    "mailto:someone@example.com",
    "not a url",
    "ht tp://space.example/",
    "https://tab\t.example/",
    "https://line\nbreak.example/",
    "https://xn--bcher-kva.example/",
    "https://bücher.example/",
    "https://a.example/b://c.example/",
    "",
    None,
]


def test_url_host_macro_equals_the_regex_it_replaces(engine: Engine) -> None:
    source = (DBT_DIR / "macros" / "host.sql").read_text()
    macro_sql = jinja2.Environment().from_string(source + "{{ url_host('u') }}").render()
    query = (
        f"SELECT u, {macro_sql} AS fast, {REGEX_HOST} AS slow "
        "FROM unnest(CAST(:urls AS text[])) AS u"
    )
    with engine.connect() as conn:
        rows = conn.execute(text(query), {"urls": AWKWARD_URLS}).all()
    assert len(rows) == len(AWKWARD_URLS)
    assert [r for r in rows if r.fast != r.slow] == []
    assert {r.u: r.fast for r in rows}["https://www.Google.com/search?q=a://b"] == "google.com"
