"""Ground truth: what the demo's events add up to, per project and UTC day.

It is computed from the event payloads exactly as they are sent, not from the
model's internal state, so what later work is checked against is what went
over the wire. Sessions are counted the way the warehouse must count them:
distinct explicit `context.sessionId`s, plus, for events without one, runs of
one anonymousId's events with no more than 30 minutes of inactivity.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

from lytics.demo.model import CONVERSION_EVENTS, EmailEvent, Parameters, ProjectTraffic, Traffic

FORMAT_VERSION = 1
SESSION_TIMEOUT = timedelta(minutes=30)
EMAIL_TYPES = (
    "email.sent",
    "email.delivered",
    "email.opened",
    "email.clicked",
    "email.bounced",
    "email.complained",
)
METRIC_NAMES = ("sessions", "conversions", "reach", "engagement")
METRIC_SOURCE = "demo"
CENT = Decimal("0.01")

DEFINITIONS = {
    "pageviews": "events of type page",
    "unique_visitors": "distinct anonymousId among all events of the day",
    "sessions": "sessions_with_id + sessions_inferred",
    "sessions_with_id": "distinct context.sessionId",
    "sessions_inferred": (
        "events without a session id, per anonymousId, split where 30 minutes pass without an event"
    ),
    "conversions": "track events whose name is in the project's conversion_events",
    "revenue": "sum of properties.revenue of conversion events",
    "identified_users": "distinct userId",
    "metrics": (
        "pushed to /v1/metrics/ingest with source 'demo': sessions and conversions as "
        "above, reach as reported by a social integration, engagement = pageviews / "
        "sessions rounded to 0.01"
    ),
    "email_events": "Resend webhooks sent, by type and UTC day of created_at",
    "days": "UTC calendar days; no session crosses midnight",
}

Metrics = dict[str, int | Decimal]


@dataclass(frozen=True)
class DayTruth:
    events: int
    pageviews: int
    track_events: int
    identifies: int
    unique_visitors: int
    identified_users: int
    sessions_with_id: int
    sessions_inferred: int
    conversions: int
    conversions_by_event: dict[str, int]
    revenue: Decimal

    @property
    def sessions(self) -> int:
        return self.sessions_with_id + self.sessions_inferred


@dataclass(frozen=True)
class ProjectTruth:
    slug: str
    site: str
    conversion_events: tuple[str, ...]
    days: dict[date, DayTruth]
    unique_visitors: int  # over the whole window, not a sum of days
    identified_users: int
    metrics: dict[date, Metrics]
    email_events: dict[date, dict[str, int]]  # empty when webhooks are not sent


@dataclass(frozen=True)
class Truth:
    parameters: Parameters
    projects: tuple[ProjectTruth, ...]

    def as_json(self) -> dict[str, Any]:
        return _truth_json(self)

    def render(self) -> bytes:
        """Stable bytes: the same traffic always renders to the same file."""
        return (json.dumps(self.as_json(), indent=2, sort_keys=True) + "\n").encode()


def _time(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


def _session_id(event: dict[str, Any]) -> str | None:
    session: str | None = event.get("context", {}).get("sessionId")
    return session


def inferred_sessions(events: Iterable[dict[str, Any]]) -> int:
    """Sessions among events without a session id: 30 minutes of inactivity ends one."""
    times: defaultdict[str, list[datetime]] = defaultdict(list)
    for event in events:
        if _session_id(event) is None:
            times[event["anonymousId"]].append(_time(event))
    count = 0
    for moments in times.values():
        moments.sort()
        count += 1 + sum(b - a > SESSION_TIMEOUT for a, b in pairwise(moments))
    return count


def _has_revenue(event: dict[str, Any]) -> bool:
    return "revenue" in event.get("properties", {})


def _day(events: Sequence[dict[str, Any]], conversion_events: tuple[str, ...]) -> DayTruth:
    conversions = [
        e for e in events if e["type"] == "track" and e.get("event") in conversion_events
    ]
    revenue = sum(
        (Decimal(str(e["properties"]["revenue"])) for e in conversions if _has_revenue(e)),
        Decimal(0),
    )
    return DayTruth(
        events=len(events),
        pageviews=sum(e["type"] == "page" for e in events),
        track_events=sum(e["type"] == "track" for e in events),
        identifies=sum(e["type"] == "identify" for e in events),
        unique_visitors=len({e["anonymousId"] for e in events}),
        identified_users=len({e["userId"] for e in events if e.get("userId")}),
        sessions_with_id=len({s for e in events if (s := _session_id(e)) is not None}),
        sessions_inferred=inferred_sessions(events),
        conversions=len(conversions),
        conversions_by_event=dict(Counter(e["event"] for e in conversions)),
        revenue=revenue.quantize(CENT),
    )


def _metrics(day: DayTruth, reach: int) -> Metrics:
    engagement = Decimal(day.pageviews) / day.sessions if day.sessions else Decimal(0)
    return {
        "sessions": day.sessions,
        "conversions": day.conversions,
        "reach": reach,
        "engagement": engagement.quantize(CENT),
    }


def _email_counts(emails: Iterable[EmailEvent], days: Sequence[date]) -> dict[date, dict[str, int]]:
    counts = {d: dict.fromkeys(EMAIL_TYPES, 0) for d in days}
    for email in emails:
        counts[email.created_at.date()][email.type] += 1
    return counts


def _project(project: ProjectTraffic, params: Parameters) -> ProjectTruth:
    by_day: dict[date, list[dict[str, Any]]] = {d: [] for d in params.dates}
    for event in project.events:
        by_day[_time(event).date()].append(event)
    days = {d: _day(events, CONVERSION_EVENTS) for d, events in by_day.items()}
    return ProjectTruth(
        slug=project.slug,
        site=project.site.kind,
        conversion_events=CONVERSION_EVENTS,
        days=days,
        unique_visitors=len({e["anonymousId"] for e in project.events}),
        identified_users=len({e["userId"] for e in project.events if e.get("userId")}),
        metrics={d: _metrics(day, project.reach[d]) for d, day in days.items()},
        email_events=_email_counts(project.emails, params.dates) if params.webhooks else {},
    )


def compute(traffic: Traffic) -> Truth:
    params = traffic.parameters
    return Truth(params, tuple(_project(p, params) for p in traffic.projects))


# --------------------------------------------------------------------- JSON


def _number(value: int | Decimal) -> int | float:
    # Values are cents at most, so a float's shortest repr is the exact decimal.
    return float(value) if isinstance(value, Decimal) else value


def _day_json(day: DayTruth) -> dict[str, Any]:
    return {
        "events": day.events,
        "pageviews": day.pageviews,
        "track_events": day.track_events,
        "identifies": day.identifies,
        "unique_visitors": day.unique_visitors,
        "identified_users": day.identified_users,
        "sessions": day.sessions,
        "sessions_with_id": day.sessions_with_id,
        "sessions_inferred": day.sessions_inferred,
        "conversions": day.conversions,
        "conversions_by_event": day.conversions_by_event,
        "revenue": _number(day.revenue),
    }


def _sum_days(days: Iterable[DayTruth]) -> dict[str, Any]:
    total: Counter[str] = Counter()
    by_event: Counter[str] = Counter()
    revenue = Decimal(0)
    for day in days:
        json_day = _day_json(day)
        total.update({k: v for k, v in json_day.items() if isinstance(v, int)})
        by_event.update(day.conversions_by_event)
        revenue += day.revenue
    return {**total, "conversions_by_event": dict(by_event), "revenue": _number(revenue)}


def _project_json(project: ProjectTruth) -> dict[str, Any]:
    totals = _sum_days(project.days.values())
    # Distinct over the window: a visitor seen on two days is one visitor.
    totals.update(
        unique_visitors=project.unique_visitors, identified_users=project.identified_users
    )
    out: dict[str, Any] = {
        "site": project.site,
        "conversion_events": list(project.conversion_events),
        "days": {d.isoformat(): _day_json(day) for d, day in project.days.items()},
        "totals": totals,
        "metrics": {
            d.isoformat(): {k: _number(v) for k, v in values.items()}
            for d, values in project.metrics.items()
        },
        "email_events": {d.isoformat(): c for d, c in project.email_events.items()},
        "email_totals": dict.fromkeys(EMAIL_TYPES, 0) if project.email_events else {},
    }
    for counts in project.email_events.values():
        for kind, n in counts.items():
            out["email_totals"][kind] += n
    return out


def _truth_json(truth: Truth) -> dict[str, Any]:
    p = truth.parameters
    projects = {project.slug: _project_json(project) for project in truth.projects}
    totals = _sum_days(day for project in truth.projects for day in project.days.values())
    # Projects never share visitors, so summing their distinct counts is exact.
    totals.update(
        unique_visitors=sum(project.unique_visitors for project in truth.projects),
        identified_users=sum(project.identified_users for project in truth.projects),
    )
    email_totals: Counter[str] = Counter()
    for project_json in projects.values():
        email_totals.update(project_json["email_totals"])
    return {
        "generator": "lytics demo",
        "format": FORMAT_VERSION,
        "parameters": {
            "seed": p.seed,
            "projects": p.projects,
            "days": p.days,
            "visitors": p.visitors,
            "start_date": p.start_date.isoformat(),
            "end_date": p.end_date.isoformat(),
            "webhooks": p.webhooks,
            "metric_source": METRIC_SOURCE,
            "session_timeout_minutes": int(SESSION_TIMEOUT.total_seconds() // 60),
        },
        "definitions": DEFINITIONS,
        "projects": projects,
        "totals": totals,
        "email_totals": dict(email_totals),
    }


def write(truth: Truth, path: Path) -> None:
    """Replace the file atomically: a reader never sees half a truth."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(truth.render())
    os.replace(partial, path)
