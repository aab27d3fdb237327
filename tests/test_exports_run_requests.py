"""What an export request covers per destination, on a fixed clock, and the date forms it takes.

The planner is pure (destinations, request, clock in; backfills and reasons
out), so the cases that depend on the time of day are pinned here; the API and
command tests run the same rules against the real clock, Postgres and Dagster.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import hypothesis
import pytest
from hypothesis import strategies as st

from lytics.exports.backfills import FORCE_TAG, FORMAT_TAG, PROJECT_TAG
from lytics.exports.moments import parse_moment
from lytics.exports.run_requests import RunRefusedError, RunRequest, Target, plan_run

NOW = datetime(2026, 11, 20, 10, 20, tzinfo=UTC)
FIRST = datetime(2025, 1, 1, tzinfo=UTC)


def _target(name: str, frequency: str, **kw: object) -> Target:
    values: dict[str, object] = {
        "name": name,
        "frequency": frequency,
        "format": "parquet",
        "datasets": ["events"],
        "enabled": True,
    }
    values.update(kw)
    return Target.from_row(values, 7)


def _request(since: str, until: str, **kw: object) -> RunRequest:
    return RunRequest(
        since=parse_moment(since),
        until=parse_moment(until),
        project_id=7,
        **kw,  # type: ignore[arg-type]
    )


def test_a_closed_hour_is_exported_and_the_open_day_is_skipped_with_its_reason() -> None:
    targets = [_target("hourly", "hourly"), _target("daily", "daily", format="csv")]

    run = plan_run(
        targets, _request("2026-11-20T09:00Z", "2026-11-20T10:00Z"), now=NOW, first=FIRST
    )

    [backfill] = run.backfills
    assert backfill.frequency == "hourly"
    assert backfill.partition_names == ("2026-11-20-09:00",)
    assert backfill.asset_keys == ("exports/events_hourly",)
    assert backfill.tags == {PROJECT_TAG: "7", FORCE_TAG: "true"}
    [requested] = run.requested
    assert (requested.destination, requested.partitions) == ("hourly", 1)
    [skipped] = run.skipped
    assert skipped.destination == "daily"
    assert skipped.field == "since"
    assert "no closed daily window" in skipped.reason


def test_each_cadence_gets_its_own_closed_windows() -> None:
    targets = [
        _target("hourly", "hourly", datasets=["events", "metrics"]),
        _target("daily", "daily", datasets=["metrics"]),
    ]

    run = plan_run(targets, _request("2026-11-18", "2026-11-20T10:20Z"), now=NOW, first=FIRST)

    by_frequency = {b.frequency: b for b in run.backfills}
    assert by_frequency["hourly"].partition_names[0] == "2026-11-18-00:00"
    assert by_frequency["hourly"].partition_names[-1] == "2026-11-20-09:00"  # 10:00 is open
    assert len(by_frequency["hourly"].partition_names) == 48 + 10
    assert by_frequency["daily"].partition_names == ("2026-11-18", "2026-11-19")
    assert by_frequency["daily"].asset_keys == ("exports/metrics_daily",)
    assert run.skipped == ()


def test_filters_and_limits_skip_destinations_with_the_field_to_change() -> None:
    targets = [
        _target("hourly", "hourly"),
        _target("daily", "daily"),
        _target("csv", "daily", format="csv"),
        _target("off", "daily", enabled=False),
        _target("metrics", "daily", datasets=["metrics"]),
    ]

    run = plan_run(
        targets,
        _request(
            "2026-01-01",
            "2026-11-01",
            fmt="parquet",
            datasets=frozenset({"events"}),
            max_partitions=400,
        ),
        now=NOW,
        first=FIRST,
    )

    assert [r.destination for r in run.requested] == ["daily"]
    assert run.backfills[0].tags[FORMAT_TAG] == "parquet"
    skipped = {s.destination: (s.field, s.reason) for s in run.skipped}
    assert skipped == {
        "csv": ("format", "it writes csv, the request asks for parquet"),
        "off": (None, "the destination is disabled"),
        "metrics": ("dataset", "it exports metrics, not events"),
        "hourly": ("until", "7296 hourly partitions requested; at most 400 per request"),
    }


def test_nothing_to_export_is_refused_naming_the_field() -> None:
    targets = [_target("hourly", "hourly"), _target("daily", "daily")]
    with pytest.raises(RunRefusedError) as open_hour:
        plan_run(targets, _request("2026-11-20T10:00Z", "2026-11-20T11:00Z"), now=NOW, first=FIRST)
    assert (open_hour.value.kind, open_hour.value.field) == ("invalid", "since")
    assert "hourly: no closed hourly window" in str(open_hour.value)
    assert "daily: no closed daily window" in str(open_hour.value)

    with pytest.raises(RunRefusedError) as backwards:
        plan_run(targets, _request("2026-11-20", "2026-11-19"), now=NOW, first=FIRST)
    assert backwards.value.field == "since"

    with pytest.raises(RunRefusedError) as no_match:
        plan_run(targets, _request("2026-11-01", "2026-11-02", fmt="csv"), now=NOW, first=FIRST)
    assert no_match.value.kind == "no_destination"


def test_a_far_off_until_is_clamped_to_now() -> None:
    run = plan_run(
        [_target("hourly", "hourly")],
        _request("2026-11-20", "9999-12-31T23:59:59Z"),
        now=NOW,
        first=FIRST,
    )
    assert run.backfills[0].partition_names[-1] == "2026-11-20-09:00"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("2026-11-20T05:30", datetime(2026, 11, 20, 5, 30, tzinfo=UTC)),
        ("2026-11-20 05:30:15", datetime(2026, 11, 20, 5, 30, 15, tzinfo=UTC)),
        ("2026-11-20T05:30:15.25Z", datetime(2026, 11, 20, 5, 30, 15, 250000, tzinfo=UTC)),
        ("2026-11-20T06:30:00+01:00", datetime(2026, 11, 20, 5, 30, tzinfo=UTC)),
        ("2026-11-20T00:30:00-05:00", datetime(2026, 11, 20, 5, 30, tzinfo=UTC)),
    ],
)
def test_date_and_time_forms(text: str, expected: datetime) -> None:
    assert parse_moment(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-20T05", "is not a date or time"),
        ("20261120", "is not a date or time"),
        ("2026-W47-1", "is not a date or time"),
        ("2026-02-30", "day is out of range"),
        ("0001-01-01T00:00+01:00", "out of range"),
        ("2026-11-20T06:30:00 01:00", "send it as %2B"),
    ],
)
def test_other_forms_are_refused_with_the_accepted_ones(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"YYYY-MM-DD|out of range") as refused:
        parse_moment(text)
    assert message in str(refused.value)


@hypothesis.settings(max_examples=300, deadline=None, derandomize=True, database=None)
@hypothesis.given(
    text=st.one_of(
        st.text(),
        st.from_regex(
            r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?",
            fullmatch=True,
        ),
        st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
    )
)
def test_any_text_parses_to_a_utc_instant_or_a_value_error(text: str) -> None:
    # The API turns a ValueError into a 400 naming the field; anything else would be a 500.
    try:
        moment = parse_moment(text)
    except ValueError:
        return
    assert moment.utcoffset() == timedelta(0)
