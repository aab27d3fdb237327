"""Automatic insights ("Sessions up 23 %, driven by referrals from …") and action items.

Pure functions over the week's tiles and traffic sources, so every rule can be
tested without a database. Thresholds are deliberately plain: a change under
10 % is noise for a weekly email, and three action items is already a lot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lytics.metrics.tiles import Tile

NOTABLE_CHANGE_PCT = 10.0
HIGH_BOUNCE_RATE = 0.6
MAX_INSIGHTS = 4
MAX_ACTIONS = 3


@dataclass(frozen=True)
class Insights:
    tiles: list[Tile]
    bounce_rate: float | None = None
    referrers_now: dict[str, int] = field(default_factory=dict)
    referrers_before: dict[str, int] = field(default_factory=dict)
    campaigns_now: dict[str, int] = field(default_factory=dict)
    campaigns_before: dict[str, int] = field(default_factory=dict)


def _pct(value: float) -> str:
    return f"{abs(value):.0f} %"


def _number(value: float | None) -> str:
    if value is None:
        return "\u2013"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def _biggest_shift(now: dict[str, int], before: dict[str, int], up: bool) -> tuple[str, int] | None:
    deltas = {name: now.get(name, 0) - before.get(name, 0) for name in set(now) | set(before)}
    candidates = [(n, d) for n, d in deltas.items() if (d > 0 if up else d < 0)]
    if not candidates:
        return None
    # Ties broken by name so the same data always gives the same sentence.
    return max(candidates, key=lambda item: (abs(item[1]), item[0]))


def _driver(found: Insights, up: bool) -> str:
    shift = _biggest_shift(found.referrers_now, found.referrers_before, up)
    if shift is None:
        return ""
    name, delta = shift
    source = "direct visits" if name == "(direct)" else f"referrals from {name}"
    return f", driven by {source} ({delta:+,} sessions)"


def derive(found: Insights) -> tuple[list[str], list[str]]:
    insights: list[str] = []
    actions: list[str] = []
    by_key = {t.key: t for t in found.tiles}

    for tile in found.tiles:
        if tile.change_pct is None or abs(tile.change_pct) < NOTABLE_CHANGE_PCT:
            continue
        up = tile.change_pct > 0
        sentence = (
            f"{tile.label} {'up' if up else 'down'} {_pct(tile.change_pct)} "
            f"({_number(tile.value)} vs {_number(tile.previous)})"
        )
        if tile.key == "sessions":
            sentence += _driver(found, up)
        insights.append(sentence)
    new_campaigns = sorted(
        (n for n in found.campaigns_now if n not in found.campaigns_before),
        key=lambda n: (-found.campaigns_now[n], n),
    )
    if new_campaigns:
        name = new_campaigns[0]
        insights.append(
            f"New campaign source {name} brought {found.campaigns_now[name]:,} sessions"
        )

    sessions = by_key.get("sessions")
    conversions = by_key.get("conversions")
    if (
        sessions is not None
        and conversions is not None
        and (sessions.change_pct or 0) > 0
        and (conversions.change_pct or 0) < 0
    ):
        actions.append(
            "Traffic grew while conversions fell: check the pages new visitors land on "
            "and the steps before a conversion."
        )
    if conversions is not None and not conversions.value and sessions and sessions.value:
        actions.append(
            "No conversions were recorded: make sure your conversion events are tracked "
            "and listed in the project's conversion_events."
        )
    if found.bounce_rate is not None and found.bounce_rate >= HIGH_BOUNCE_RATE:
        actions.append(
            f"{found.bounce_rate:.0%} of sessions bounced: review the landing pages of your "
            "top referrers."
        )
    rising = _biggest_shift(found.referrers_now, found.referrers_before, up=True)
    if rising is not None and rising[0] != "(direct)":
        actions.append(
            f"{rising[0]} sent {rising[1]:+,} more sessions than last week: "
            "consider engaging with that audience."
        )
    falling = _biggest_shift(found.referrers_now, found.referrers_before, up=False)
    if falling is not None and falling[0] != "(direct)" and -falling[1] >= 10:
        actions.append(
            f"Referrals from {falling[0]} dropped by {-falling[1]:,} sessions: "
            "check whether a link or a campaign there ended."
        )
    return insights[:MAX_INSIGHTS], actions[:MAX_ACTIONS]
