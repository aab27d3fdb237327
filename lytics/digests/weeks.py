"""Digest weeks: Monday to Sunday, named by their Monday (the Dagster partition key)."""

from __future__ import annotations

from datetime import date, timedelta

from lytics.metrics.periods import Period


def week_of(day: date) -> date:
    """The Monday starting the week that contains `day`."""
    return day - timedelta(days=day.weekday())


def week_period(monday: date) -> Period:
    if monday.weekday() != 0:
        raise ValueError(f"a digest week starts on a Monday, not on {monday.isoformat()}")
    return Period(monday, monday + timedelta(days=6))


def last_complete_week(today: date) -> date:
    """The week a digest sent on `today` reports on: the last one that has ended."""
    return week_of(today) - timedelta(days=7)


def parse_week(value: str) -> date:
    """`2026-11-16` (any day of the week is accepted and means its week)."""
    return week_of(date.fromisoformat(value))
