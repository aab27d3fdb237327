"""What the digest says and how it is signed: insights, action items, tokens, rendering."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lytics.digests.content import DigestContent, Project
from lytics.digests.insights import Insights, derive
from lytics.digests.render import render
from lytics.digests.unsubscribe import InvalidTokenError, UnsubscribeSigner
from lytics.digests.weeks import last_complete_week, parse_week, week_period
from lytics.metrics.periods import change_percent
from lytics.metrics.tiles import Tile


def _tile(key: str, value: float | None, previous: float | None) -> Tile:
    label = key.replace("_", " ").capitalize()
    return Tile(key, label, value, previous, change_percent(value, previous))


def test_sessions_up_names_the_referrer_that_drove_it() -> None:
    insights, actions = derive(
        Insights(
            tiles=[_tile("sessions", 123, 100), _tile("conversions", 8, 10)],
            referrers_now={"news.example.com": 41, "(direct)": 62},
            referrers_before={"news.example.com": 20, "(direct)": 60},
            campaigns_now={"newsletter": 15},
        )
    )
    assert insights[0] == (
        "Sessions up 23 % (123 vs 100), driven by referrals from news.example.com (+21 sessions)"
    )
    assert "Conversions down 20 % (8 vs 10)" in insights
    assert "New campaign source newsletter brought 15 sessions" in insights
    assert actions[0].startswith("Traffic grew while conversions fell")
    assert any("news.example.com sent +21 more sessions" in a for a in actions)


def test_small_changes_are_not_insights_and_bounces_raise_an_action() -> None:
    insights, actions = derive(Insights(tiles=[_tile("sessions", 103, 100)], bounce_rate=0.72))
    assert insights == []
    assert actions == ["72% of sessions bounced: review the landing pages of your top referrers."]


def test_a_falling_referrer_and_missing_conversions_become_actions() -> None:
    _, actions = derive(
        Insights(
            tiles=[_tile("sessions", 80, 100), _tile("conversions", 0, 0)],
            referrers_now={"blog.example.org": 5},
            referrers_before={"blog.example.org": 30},
        )
    )
    assert any(a.startswith("No conversions were recorded") for a in actions)
    assert any("blog.example.org dropped by 25 sessions" in a for a in actions)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["sessions", "pageviews", "conversions", "reach"]),
            st.one_of(st.none(), st.floats(0, 1e6)),
            st.one_of(st.none(), st.floats(0, 1e6)),
        ),
        max_size=6,
    ),
    st.dictionaries(st.text(min_size=1, max_size=10), st.integers(0, 1000), max_size=5),
    st.dictionaries(st.text(min_size=1, max_size=10), st.integers(0, 1000), max_size=5),
)
def test_insights_are_bounded_and_deterministic(
    tiles: list[tuple[str, float | None, float | None]],
    now: dict[str, int],
    before: dict[str, int],
) -> None:
    found = Insights([_tile(*t) for t in tiles], referrers_now=now, referrers_before=before)
    first = derive(found)
    assert first == derive(found)
    assert len(first[0]) <= 4
    assert len(first[1]) <= 3


def test_unsubscribe_tokens_verify_and_refuse_tampering() -> None:
    signer = UnsubscribeSigner("secret-one")
    token = signer.token(7, "Ann@Example.com")
    who = signer.verify(token)
    assert (who.project_id, who.email) == (7, "ann@example.com")
    body, _, mac = token.partition(".")
    other = UnsubscribeSigner("secret-two").token(7, "ann@example.com")
    forged_body = UnsubscribeSigner("x").token(8, "ann@example.com").partition(".")[0]
    for bad in (other, f"{forged_body}.{mac}", f"{body}.{mac[::-1]}", "", "a.b.c", body):
        with pytest.raises(InvalidTokenError):
            signer.verify(bad)


def test_weeks_are_monday_to_sunday() -> None:
    assert parse_week("2026-11-12") == date(2026, 11, 9)
    assert week_period(date(2026, 11, 9)).end == date(2026, 11, 15)
    assert last_complete_week(date(2026, 11, 16)) == date(2026, 11, 9)
    with pytest.raises(ValueError, match="Monday"):
        week_period(date(2026, 11, 10))


def test_rendering_escapes_data_and_is_deterministic() -> None:
    content = DigestContent(
        Project(1, "x", "<script>alert(1)</script> & Co"),
        week_period(date(2026, 11, 9)),
        [_tile("sessions", 10, 5)],
        insights=['Referrals from "<img src=x onerror=alert(1)>" grew'],
        has_data=True,
    )
    first = render(content, sender="a <a@x.test>", recipient="b@x.test", unsubscribe_url="u")
    again = render(content, sender="a <a@x.test>", recipient="b@x.test", unsubscribe_url="u")
    assert first == again
    assert "<script>" not in first.html
    assert "<img" not in first.html
    assert "&lt;script&gt;" in first.html
    assert "<script>alert(1)</script> & Co" in first.text  # plain text is not HTML


def test_a_pushed_metric_named_like_a_site_tile_is_told_apart() -> None:
    from lytics.digests.content import _reported

    site = {"sessions": _tile("sessions", 186, 185)}
    pushed = _reported(_tile("sessions", 190, 180), site)
    other = _reported(_tile("reach", 6210, 7654), site)
    assert (pushed.key, pushed.label) == ("reported:sessions", "Sessions (reported)")
    assert pushed.value == 190
    assert (other.key, other.label) == ("reach", "Reach")


def test_only_a_week_that_has_ended_can_be_mailed() -> None:
    from lytics.digests.weeks import WeekNotOverError, require_ended

    sunday = date(2026, 11, 22)
    assert require_ended(date(2026, 11, 9), sunday) == date(2026, 11, 9)
    with pytest.raises(WeekNotOverError, match="last complete week is 2026-11-09"):
        require_ended(date(2026, 11, 16), sunday)  # ends tonight
    assert require_ended(date(2026, 11, 16), date(2026, 11, 23)) == date(2026, 11, 16)
