"""GitHub extraction against a local GitHub (real HTTP, PyGithub pointed at its base URL).

What must hold: a first sync follows Link pagination and stores every stream; an
unchanged second sync is conditional throughout and costs no quota; a change is
picked up with a handful of requests; the reserve is checked first; a primary
limit stops cleanly and the next run resumes from the saved cursors; secondary
limits wait Retry-After; 5xx are retried; 401 fails loudly; 404 and traffic 403
are recorded and skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from lytics.github.client import (
    GitHubAuthError,
    UnavailableError,
    canonical,
    next_link,
)
from tests.support.fake_github import BASE_TIME, Logged, iso
from tests.support.github import Served, connect_source, sync_once

# What the standard fixture holds (tests/support/fake_github.py).
EXPECTED = {
    "accounts": 1,
    "repositories": 3,
    "stargazers": 12 + 3 + 2,
    "issues": 7 + 1,
    "pull_requests": 6,
    "releases": 3,
    "commits": 8 + 1 + 1,
    "traffic": 3 + 1,
}
SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table: int(conn.execute(text(f"SELECT count(*) FROM github.{table}")).scalar_one())
            for table in EXPECTED
        }


def latest_sync(engine: Engine) -> object:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT max(synced_at) FROM (SELECT synced_at FROM github.stargazers "
                "UNION ALL SELECT synced_at FROM github.issues "
                "UNION ALL SELECT synced_at FROM github.repositories) s"
            )
        ).scalar_one()


def paths(log: list[Logged]) -> list[str]:
    return [entry.path for entry in log]


def test_link_and_canonical_urls() -> None:
    header = (
        '<https://ghe.example/api/v3/repos/o/r/stargazers?per_page=5&page=2>; rel="next", '
        '<https://ghe.example/api/v3/repos/o/r/stargazers?per_page=5&page=4>; rel="last"'
    )
    following = next_link({"link": header})
    assert following == "https://ghe.example/api/v3/repos/o/r/stargazers?per_page=5&page=2"
    assert next_link({"link": header.split(",")[1]}) is None
    assert next_link({}) is None
    # The URL we build and the same URL from a Link header share one ETag key.
    assert canonical(following, "/api/v3") == canonical("/repos/o/r/stargazers?page=2&per_page=5")


def test_first_sync_follows_link_pagination_and_stores_every_stream(
    github: Served, engine: Engine
) -> None:
    source = connect_source(engine, github.api_url)
    report = sync_once(engine, source)

    assert report.complete, report.detail
    assert counts(engine) == EXPECTED
    log = github.fake.requests()
    stargazer_pages = [e.query["page"] for e in log if e.path == "/repos/octo/alpha/stargazers"]
    assert stargazer_pages == ["1", "2", "3"]  # 12 stars, 5 per page, followed by Link
    assert report.stats.requests == len(log)
    with engine.connect() as conn:
        first_star = conn.execute(
            text(
                "SELECT login, starred_at FROM github.stargazers "
                "WHERE repository_id = 101 ORDER BY starred_at LIMIT 1"
            )
        ).one()
        assert first_star.login == "fan101-0"
        assert first_star.starred_at == BASE_TIME - timedelta(days=10)
        merged = conn.execute(
            text("SELECT count(*) FROM github.pull_requests WHERE merged")
        ).scalar_one()
        assert merged == 4  # PRs 8, 10, 11, 13 (n % 3 != 0)
        repos = {
            r.full_name: (r.private, r.exposed, r.watchers_count)
            for r in conn.execute(text("SELECT * FROM github.repositories"))
        }
        assert repos == {
            "octo/alpha": (False, True, 4),
            "octo/beta": (False, True, 1),
            "octo/secret": (True, False, 1),
        }
        cursor = conn.execute(
            text(
                "SELECT status, detail FROM github.sync_cursors "
                "WHERE repository_id = 102 AND stream = 'traffic'"
            )
        ).one()
    # Traffic without push access: recorded, skipped, not a failure.
    assert cursor.status == "forbidden"
    assert "403" in cursor.detail
    assert report.forbidden == ["octo/beta traffic"]


def test_unchanged_second_sync_is_conditional_costs_no_quota_and_writes_nothing(
    github: Served, engine: Engine
) -> None:
    source = connect_source(engine, github.api_url)
    first = sync_once(engine, source)
    assert first.complete
    before, written = github.fake.remaining, latest_sync(engine)
    mark = len(github.fake.requests())

    second = sync_once(engine, source)

    assert second.complete
    log = github.fake.requests(mark)
    # /rate_limit is the pre-run check (free on GitHub); everything else is a 304.
    assert log[0].path == "/rate_limit"
    assert all(e.if_none_match and e.status == 304 for e in log[1:]), [
        (e.path, e.status) for e in log[1:] if not (e.if_none_match and e.status == 304)
    ]
    assert github.fake.remaining == before
    assert latest_sync(engine) == written
    assert counts(engine) == EXPECTED
    assert second.stats.not_modified == len(log) - 1
    print(f"\nrequests: first sync {first.stats.requests}, second sync {second.stats.requests}")


def test_a_change_is_picked_up_with_a_few_requests(github: Served, engine: Engine) -> None:
    source = connect_source(engine, github.api_url)
    sync_once(engine, source)
    alpha = github.fake.repos["octo/alpha"]
    alpha.add_stars(1, start=BASE_TIME)  # star 13: a new last page
    alpha.issues[0]["state"] = "closed"
    alpha.issues[0]["updated_at"] = iso(BASE_TIME + timedelta(hours=1))
    mark = len(github.fake.requests())

    report = sync_once(engine, source)

    assert report.complete
    assert report.streams["stargazers"].rows_changed == 1
    assert report.streams["issues"].rows_changed == 1
    unconditional = [e for e in github.fake.requests(mark) if e.status == 200]
    assert len(unconditional) <= 8, paths(unconditional)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM github.stargazers")).scalar_one() == 18
        state = conn.execute(
            text("SELECT state FROM github.issues WHERE id = :id"), {"id": alpha.issues[0]["id"]}
        ).scalar_one()
    assert state == "closed"


def test_run_does_not_start_below_the_reserve(github: Served, engine: Engine) -> None:
    source = connect_source(engine, github.api_url)
    github.fake.set_budget(10)

    report = sync_once(engine, source, reserve=50)

    assert report.stopped == "reserve"
    assert report.reset_at is not None
    assert int(report.reset_at.timestamp()) == github.fake.reset
    assert paths(github.fake.requests()) == ["/rate_limit"]
    assert counts(engine)["repositories"] == 0


def test_primary_limit_stops_cleanly_and_the_next_run_resumes_without_duplicates(
    github: Served, engine: Engine
) -> None:
    source = connect_source(engine, github.api_url)
    # /user, /user/repos, three repositories, stargazer pages 1 and 2: then the limit.
    github.fake.set_budget(7)

    first = sync_once(engine, source, reserve=0)

    assert first.stopped == "primary_rate_limit"
    assert first.reset_at is not None
    assert int(first.reset_at.timestamp()) == github.fake.reset
    assert "cursors are saved" in (first.detail or "")
    assert counts(engine)["stargazers"] == 10  # two pages committed with their cursor
    with engine.connect() as conn:
        position = conn.execute(
            text(
                "SELECT position FROM github.sync_cursors "
                "WHERE repository_id = 101 AND stream = 'stargazers'"
            )
        ).scalar_one()
    assert position == {"page": 2, "count": 5}

    github.fake.set_budget(5000)
    mark = len(github.fake.requests())
    second = sync_once(engine, source, reserve=0)

    assert second.complete
    assert counts(engine) == EXPECTED  # primary keys: nothing stored twice
    resumed = [
        e.query["page"]
        for e in github.fake.requests(mark)
        if e.path == "/repos/octo/alpha/stargazers"
    ]
    assert resumed == ["2", "3"]  # from the saved page, not from the start


@pytest.mark.parametrize("status", [403, 429])
def test_secondary_limit_waits_retry_after(github: Served, engine: Engine, status: int) -> None:
    source = connect_source(engine, github.api_url)
    github.fake.fail(
        r"^/repos/octo/alpha/pulls$", status, headers={"Retry-After": "1"}, message=SECONDARY
    )

    report = sync_once(engine, source)

    assert report.complete
    assert counts(engine) == EXPECTED
    attempts = [e for e in github.fake.requests() if e.path == "/repos/octo/alpha/pulls"]
    assert [e.status for e in attempts][:2] == [status, 200]
    # The server saw the retry no sooner than it asked; the client waited what it was told.
    assert attempts[1].at - attempts[0].at >= 1.0
    assert report.stats.retries == 1
    assert report.stats.waited_seconds == 1.0


def test_secondary_limit_longer_than_allowed_stops_cleanly(github: Served, engine: Engine) -> None:
    source = connect_source(engine, github.api_url)
    github.fake.fail(r"^/repos/octo/beta$", 403, headers={"Retry-After": "3600"}, message=SECONDARY)

    waits: list[float] = []
    report = sync_once(engine, source, max_wait=5, sleep=waits.append)

    # Asked for an hour, allowed five seconds: it stops at once instead of waiting or retrying.
    assert waits == []
    assert (report.stats.retries, report.stats.waited_seconds) == (0, 0.0)
    assert [e.status for e in github.fake.requests() if e.path == "/repos/octo/beta"] == [403]
    assert report.stopped == "secondary_rate_limit"
    assert report.reset_at is not None
    assert report.reset_at - datetime.now(UTC) > timedelta(minutes=55)  # when it may go on
    assert counts(engine)["repositories"] == 1  # alpha was stored before the stop


def test_server_errors_are_retried_with_backoff(github: Served, engine: Engine) -> None:
    source = connect_source(engine, github.api_url)
    github.fake.fail(r"^/repos/octo/alpha/releases$", 502, times=2, message="Server Error")

    report = sync_once(engine, source)

    assert report.complete
    assert counts(engine)["releases"] == 3
    attempts = [e for e in github.fake.requests() if e.path == "/repos/octo/alpha/releases"]
    assert [e.status for e in attempts][:3] == [502, 502, 200]
    # Exponential: 1 s, then 2 s.
    assert attempts[1].at - attempts[0].at >= 1.0
    assert attempts[2].at - attempts[1].at >= 2.0
    assert report.stats.retries == 2


def test_server_errors_that_do_not_end_fail_the_sync(github: Served, engine: Engine) -> None:
    source = connect_source(engine, github.api_url)
    github.fake.fail(r"^/repos/octo/alpha/releases$", 503, times=10, message="Unavailable")

    with pytest.raises(UnavailableError, match="503"):
        sync_once(engine, source, retries=1)
    # What was read before the outage is kept, with its cursors.
    assert counts(engine)["stargazers"] == 12


def test_bad_token_fails_loudly(github: Served, engine: Engine) -> None:
    source = connect_source(engine, github.api_url, token="ghp_revoked")

    with pytest.raises(GitHubAuthError) as raised:
        sync_once(engine, source)

    message = str(raised.value)
    assert "401" in message
    assert "Bad credentials" in message
    assert "lytics github connect" in message
    assert counts(engine)["repositories"] == 0


def test_missing_repository_is_recorded_and_the_others_sync(github: Served, engine: Engine) -> None:
    source = connect_source(engine, github.api_url, follow=["octo/alpha", "octo/gone"])

    report = sync_once(engine, source)

    assert report.complete
    assert report.not_found == ["octo/gone"]
    assert report.repositories == ["octo/alpha"]
    assert counts(engine)["stargazers"] == 12


def test_only_named_repositories_and_streams_are_refreshed(github: Served, engine: Engine) -> None:
    source = connect_source(engine, github.api_url)
    sync_once(engine, source)
    github.fake.repos["octo/beta"].add_stars(1, start=BASE_TIME)
    mark = len(github.fake.requests())

    report = sync_once(engine, source, streams=["repositories", "stargazers"], only=["octo/beta"])

    assert report.repositories == ["octo/beta"]
    touched = {e.path for e in github.fake.requests(mark)}
    assert touched == {
        "/rate_limit",
        "/user",
        "/repos/octo/beta",
        "/repos/octo/beta/stargazers",
    }
    assert counts(engine)["stargazers"] == EXPECTED["stargazers"] + 1


def test_unreachable_github_fails_after_retries(engine: Engine) -> None:
    from tests.support.http import free_port

    source = connect_source(engine, f"http://127.0.0.1:{free_port()}/api/v3")

    waits: list[float] = []
    with pytest.raises(UnavailableError, match="unreachable"):
        sync_once(engine, source, retries=1, sleep=waits.append)
    assert waits == [1.0]  # one backoff before giving up


def test_a_star_after_a_full_last_page_is_found(github: Served, engine: Engine) -> None:
    beta = github.fake.repos["octo/beta"]
    beta.add_stars(2, start=BASE_TIME - timedelta(days=1))  # 5 stars: exactly one full page
    source = connect_source(engine, github.api_url, follow=["octo/beta"])
    sync_once(engine, source, streams=["repositories", "stargazers"])
    mark = len(github.fake.requests())
    unchanged = sync_once(engine, source, streams=["repositories", "stargazers"])
    assert all(e.status == 304 for e in github.fake.requests(mark)[1:])
    assert unchanged.streams["stargazers"].rows_changed == 0

    beta.add_stars(1, start=BASE_TIME)  # GitHub gives page 1 no next link; this is page 2
    report = sync_once(engine, source, streams=["repositories", "stargazers"])

    assert report.streams["stargazers"].rows_changed == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM github.stargazers")).scalar_one() == 6


def test_an_issue_update_is_found_when_the_since_window_fills_a_page(
    github: Served, engine: Engine
) -> None:
    alpha = github.fake.repos["octo/alpha"]
    source = connect_source(engine, github.api_url, follow=["octo/alpha"])
    sync_once(engine, source, streams=["repositories", "issues"])
    # Five updates within the lookback: the `since` window is exactly one full page.
    for minute, issue in enumerate(alpha.issues[:5]):
        issue["updated_at"] = iso(BASE_TIME + timedelta(days=1, minutes=minute))
    sync_once(engine, source, streams=["repositories", "issues"])
    alpha.add_issue(99, BASE_TIME + timedelta(days=1, minutes=30))

    report = sync_once(engine, source, streams=["repositories", "issues"])

    assert report.streams["issues"].rows_changed == 1
    with engine.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM github.issues WHERE number = 99")).scalar_one()
            == 1
        )
