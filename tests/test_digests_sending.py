"""Sending weekly digests against a local Resend stand-in: exactly once, paced, retried.

The sender runs as the `lytics_pipeline` role, as in Dagster, so these tests also
prove that role can do the digest's work and nothing here needs the owner.
Nothing is mocked: Postgres is real, the Resend API is a real HTTP server
(tests/support/fake_resend.py). Mart rows are inserted directly.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from lytics.digests import outbox, runs
from lytics.digests.attempts import Attempt
from lytics.digests.config import resend_client, send_config
from lytics.digests.resend import (
    Pacer,
    QuotaExceededError,
    RejectedError,
    ResendClient,
    RetryPolicy,
)
from lytics.digests.sender import DigestSender, start_run
from lytics.digests.service import run_digest
from lytics.projects import create_project
from lytics.settings import MissingSettingError, Settings
from lytics.warehouse.engine import role_engine
from lytics.warehouse.logins import PIPELINE, role_login
from tests.support.digests import (
    WEEK,
    add_members,
    create_marts,
    deliveries,
    digest_settings,
    seed_two_weeks,
    seed_week,
)
from tests.support.fake_resend import API_KEY, FakeResend, fake_resend

EMAILS = [f"person{i}@example.com" for i in range(7)]


@pytest.fixture
def pipeline_engine(database_url: str) -> Iterator[Engine]:
    eng = role_engine(role_login(PIPELINE, database_url, None))
    yield eng
    eng.dispose()


@pytest.fixture
def project(engine: Engine) -> int:
    create_marts(engine)
    with engine.begin() as conn:
        project_id = create_project(conn, "acme", name="Acme").id
    seed_two_weeks(engine, project_id)
    add_members(engine, project_id, EMAILS)
    return project_id


def _run(pipeline_engine: Engine, settings: Settings, **request: Any) -> Any:
    weeks = request.pop("weeks", None) or [WEEK]
    week = request.pop("week", WEEK)
    return run_digest(
        pipeline_engine, settings, runs.RunRequest(period_start=week, **request), weeks
    )


def _uncooled(settings: Settings, fake: FakeResend, **kw: Any) -> Settings:
    return digest_settings(settings, fake, digest_cooldown_seconds=0, **kw)


# --------------------------------------------------------------------------- exactly once


def test_a_run_mails_everyone_once_and_a_rerun_mails_nobody(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    cfg = _uncooled(settings, fake)
    report = _run(pipeline_engine, cfg)
    assert report.sent == len(EMAILS)
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)
    assert set(deliveries(engine).values()) == {"sent"}
    # Batching: 7 recipients went out in one /emails/batch request.
    assert [r.path for r in fake.requests] == ["/emails/batch"]

    again = _run(pipeline_engine, cfg)
    assert again.sent == 0
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)
    with engine.connect() as conn:
        history = conn.execute(
            text("SELECT status, sent, errors FROM app.digest_runs ORDER BY id")
        ).all()
    assert [tuple(r) for r in history] == [("succeeded", 7, 0), ("succeeded", 0, 0)]


def test_backfill_of_two_weeks_mails_once_per_week_and_overlapping_rerun_adds_nothing(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    cfg = _uncooled(settings, fake)
    earlier = WEEK - timedelta(days=7)
    report = _run(pipeline_engine, cfg, week=earlier, weeks=[earlier, WEEK])
    assert report.sent == 2 * len(EMAILS)
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 2)
    # The schedule then fires for the later week: it was already done by the backfill.
    assert _run(pipeline_engine, cfg).sent == 0
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 2)


def test_crash_after_claim_before_send_completes_on_the_next_run(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    cfg = _uncooled(settings, fake, resend_batch_size=3)
    with _first_claimed_batch(pipeline_engine, cfg) as (_, first):
        pass  # ... and the process dies here: 3 rows claimed, nothing sent.
    assert first is not None
    assert len(first.ids) == 3
    assert fake.requests == []
    report = _run(pipeline_engine, cfg)
    assert report.sent == len(EMAILS)
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)


def test_crash_after_send_before_marking_sent_does_not_mail_twice(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    cfg = _uncooled(settings, fake, resend_batch_size=3)
    with _first_claimed_batch(pipeline_engine, cfg) as (client, group):
        assert group is not None
        assert group.batch_key is not None
        first_ids = client.send_batch(group.payloads, group.batch_key)
        # ... Resend accepted the batch, and the process dies before recording it.
    assert sum(fake.per_recipient().values()) == 3
    report = _run(pipeline_engine, cfg)
    # The resend of the claimed batch was answered from Resend's idempotency store.
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)
    assert report.sent == len(EMAILS)
    with engine.connect() as conn:
        recorded: list[object] = list(
            conn.execute(
                text(
                    "SELECT provider_message_id FROM app.digest_deliveries WHERE id = ANY(:ids) "
                    "ORDER BY id"
                ),
                {"ids": group.ids},
            )
            .scalars()
            .all()
        )
        assert [str(r) for r in recorded] == first_ids


def test_answer_lost_after_resend_accepted_is_retried_harmlessly(
    pipeline_engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    fake.inject("drop_after_accept")
    report = _run(pipeline_engine, _uncooled(settings, fake))
    assert report.sent == len(EMAILS)
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)
    assert fake.statuses() == [0, 200]  # the drop, then the idempotent replay


def test_resend_down_leaves_rows_claimed_and_the_next_run_finishes_them(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    cfg = _uncooled(settings, fake, resend_batch_size=1)
    fake.inject("server_error", times=4)  # first email: 1 try + 3 retries, all 500
    report = _run(pipeline_engine, cfg)
    assert report.sent == 0
    assert report.stopped is not None
    states = deliveries(engine)
    assert sorted(states.values()).count("claimed") == 1
    assert sorted(states.values()).count("pending") == len(EMAILS) - 1
    with engine.connect() as conn:
        run = conn.execute(text("SELECT status, errors FROM app.digest_runs")).one()
    assert tuple(run) == ("failed", len(EMAILS))
    assert _run(pipeline_engine, cfg).sent == len(EMAILS)
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)


def _digest_run(engine: Engine, run_id: int) -> tuple[Any, ...]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, sent, isempty(cooldown) FROM app.digest_runs WHERE id = :id"),
            {"id": run_id},
        ).one()
    return tuple(row)


def _claimers(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT recipient, claimed_by FROM app.digest_deliveries WHERE status = 'claimed'")
        )
        return {r[0]: r[1] for r in rows}


def test_a_retry_of_the_same_digest_run_resends_what_the_dead_attempt_claimed(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    """Dagster's run retry reuses the run's config, so it continues the same digest run
    as a new attempt; the dead attempt's claims are its to finish."""
    cfg = _uncooled(settings, fake, resend_batch_size=3)
    with _first_claimed_batch(pipeline_engine, cfg, Attempt("run-a")) as (client, group):
        assert group is not None
        assert group.batch_key is not None
        client.send_batch(group.payloads, group.batch_key)
        # ... Resend accepted the batch, and the process running attempt run-a dies.
    assert set(_claimers(engine).values()) == {"run-a"}
    with engine.connect() as conn:
        digest_run = conn.execute(text("SELECT max(id) FROM app.digest_runs")).scalar_one()

    retry = Attempt("run-b", is_over=lambda attempt: attempt == "run-a")
    report = run_digest(
        pipeline_engine,
        cfg,
        runs.RunRequest(period_start=WEEK),
        [WEEK],
        run_id=digest_run,
        attempt=retry,
    )
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)
    assert report.sent == len(EMAILS)
    assert set(deliveries(engine).values()) == {"sent"}
    assert _digest_run(engine, digest_run)[:2] == ("succeeded", len(EMAILS))


def test_claims_of_an_attempt_still_in_progress_are_left_to_it(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    cfg = _uncooled(settings, fake, resend_batch_size=3)
    with _first_claimed_batch(pipeline_engine, cfg, Attempt("run-a")) as (_, group):
        assert group is not None  # run-a is still sending these three
    still_running = Attempt("run-b", is_over=lambda _attempt: False)
    report = run_digest(
        pipeline_engine, cfg, runs.RunRequest(period_start=WEEK), [WEEK], attempt=still_running
    )
    assert report.sent == len(EMAILS) - 3
    assert set(_claimers(engine).values()) == {"run-a"}
    assert sum(fake.per_recipient().values()) == len(EMAILS) - 3
    # Once run-a is over, the next attempt sends them, and nobody gets two.
    later = Attempt("run-c", is_over=lambda attempt: attempt == "run-a")
    run_digest(pipeline_engine, cfg, runs.RunRequest(period_start=WEEK), [WEEK], attempt=later)
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)
    assert _claimers(engine) == {}


def test_a_run_that_cannot_start_is_failed_and_frees_the_cooldown(
    pipeline_engine: Engine, engine: Engine, settings: Settings, project: int
) -> None:
    # What POST /v1/digest/weekly does before Dagster starts the run: claim the slot.
    request = runs.RunRequest(period_start=WEEK, project_id=project)
    claimed = runs.claim_now(pipeline_engine, request, 600)
    no_key = settings.model_copy(update={"resend_api_key": None})
    with pytest.raises(MissingSettingError, match="RESEND_API_KEY"):
        run_digest(pipeline_engine, no_key, request, [WEEK], run_id=claimed)
    assert _digest_run(engine, claimed) == ("failed", 0, True)
    # The caller may retry at once instead of waiting out ten minutes.
    assert runs.claim_now(pipeline_engine, request, 600) != claimed


def test_a_run_that_stops_failed_frees_the_cooldown_and_one_that_succeeds_keeps_it(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    cfg = digest_settings(settings, fake, resend_batch_size=2)  # the 600 s cooldown
    fake.inject("quota")
    stopped = _run(pipeline_engine, cfg)
    assert stopped.stopped is not None
    assert _digest_run(engine, stopped.run_id) == ("failed", 0, True)
    done = _run(pipeline_engine, cfg)
    assert _digest_run(engine, done.run_id) == ("succeeded", len(EMAILS), False)
    with pytest.raises(runs.CooldownActiveError):
        _run(pipeline_engine, cfg)


def test_dagster_failing_a_run_fails_its_digest_run_unless_a_retry_adopted_it(
    pipeline_engine: Engine, engine: Engine, project: int
) -> None:
    request = runs.RunRequest(period_start=WEEK, project_id=project)
    first = runs.claim_now(pipeline_engine, request, 600)
    with pipeline_engine.begin() as conn:
        # Launched as run-a, which died before it adopted the claim: found by its tag.
        assert runs.fail_dagster_run(conn, "run-a", first, "run-a failed") == first
    assert _digest_run(engine, first) == ("failed", 0, True)

    second = runs.claim_now(pipeline_engine, request, 600)
    with pipeline_engine.begin() as conn:
        runs.adopt(conn, second, "run-b")
        runs.adopt(conn, second, "run-c")  # run-b died; its retry run-c took over
        # Dagster's word on run-b arrives late: it no longer holds the digest run.
        assert runs.fail_dagster_run(conn, "run-b", second, "run-b failed") is None
        assert runs.retried(conn, "run-c") == second
    assert _digest_run(engine, second) == ("running", 0, False)


def runs_report(run_id: int) -> Any:
    from lytics.digests.sender import RunReport

    return RunReport(run_id, [WEEK])


@contextmanager
def _first_claimed_batch(
    pipeline_engine: Engine, cfg: Settings, attempt: Attempt | None = None
) -> Iterator[tuple[Any, Any]]:
    """A run started, its outbox planned and its first batch claimed: where a crash strikes.

    Yields the Resend client and the claimed group; leaving the block is the crash
    (nothing after the claim is recorded).
    """
    run_id = start_run(pipeline_engine, runs.RunRequest(period_start=WEEK), 0)
    with resend_client(cfg) as client:
        sender = DigestSender(pipeline_engine, client, send_config(cfg), attempt=attempt)
        with pipeline_engine.begin() as conn:
            outbox.plan(conn, outbox.Scope(WEEK), run_id, sender.config.key_prefix)
        yield client, sender._claim(outbox.Scope(WEEK), run_id, runs_report(run_id))


# --------------------------------------------------------------------------- who gets nothing


def test_suppressed_unsubscribed_and_no_data_recipients_get_nothing(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    with engine.begin() as conn:
        empty = create_project(conn, "quiet", name="Quiet").id
        conn.execute(
            text("INSERT INTO app.email_suppressions (email, reason) VALUES (:e, 'manual')"),
            {"e": EMAILS[0]},
        )
        for i, (kind, address, bounce) in enumerate(
            [
                ("email.bounced", EMAILS[1], "Permanent"),
                ("email.complained", EMAILS[2], None),
                ("email.bounced", EMAILS[3], "Transient"),  # a soft bounce suppresses nothing
            ]
        ):
            data: dict[str, Any] = {"to": [address.upper()], "email_id": f"e{i}"}
            if bounce:
                data["bounce"] = {"type": bounce}
            conn.execute(
                text(
                    "INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id, "
                    "event_type, headers, body, payload) VALUES (:p, 'resend', :d, :t, '{}', "
                    "'x', :payload)"
                ),
                {
                    "p": project,
                    "d": f"msg_{i}",
                    "t": kind,
                    "payload": json.dumps({"type": kind, "data": data}),
                },
            )
    add_members(engine, project, ["gone@example.com"], enabled=False)
    add_members(engine, empty, ["idle@example.com"])

    report = _run(pipeline_engine, _uncooled(settings, fake))
    assert set(fake.per_recipient()) == set(EMAILS[3:])
    states = deliveries(engine)
    assert states[EMAILS[0]] == states[EMAILS[1]] == states[EMAILS[2]] == "suppressed"
    assert states["idle@example.com"] == "skipped"  # a project without data that week
    assert "gone@example.com" not in states  # digest switched off: not even planned
    assert report.skipped == 4
    with engine.connect() as conn:
        found = conn.execute(text("SELECT email, reason FROM app.email_suppressions"))
        reasons = {str(r[0]): str(r[1]) for r in found}
    assert reasons == {EMAILS[0]: "manual", EMAILS[1]: "bounced", EMAILS[2]: "complained"}


def test_unsubscribing_after_planning_still_prevents_the_send(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    with engine.begin() as conn:
        outbox.plan(conn, outbox.Scope(WEEK), None, "k/")
        conn.execute(
            text(
                "UPDATE app.project_members SET digest_enabled = false WHERE user_id = "
                "(SELECT id FROM app.users WHERE email = :e)"
            ),
            {"e": EMAILS[0]},
        )
    _run(pipeline_engine, _uncooled(settings, fake))
    assert EMAILS[0] not in fake.per_recipient()
    assert deliveries(engine)[EMAILS[0]] == "skipped"


def test_scope_email_mails_only_that_address(
    pipeline_engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    report = _run(
        pipeline_engine, _uncooled(settings, fake), scope="email", scope_email=EMAILS[4].upper()
    )
    assert report.sent == 1
    assert fake.per_recipient() == {EMAILS[4]: 1}


# --------------------------------------------------------------------------- cooldown


def test_twenty_concurrent_triggers_yield_one_run_and_each_recipient_one_email(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    cfg = digest_settings(settings, fake)  # the 600 s cooldown
    barrier = threading.Barrier(20)
    outcomes: list[Any] = []

    def trigger() -> None:
        barrier.wait()
        try:
            outcomes.append(_run(pipeline_engine, cfg))
        except runs.CooldownActiveError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=trigger) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    refused = [o for o in outcomes if isinstance(o, runs.CooldownActiveError)]
    assert len(outcomes) == 20
    assert len(refused) == 19
    # Told to wait for what is left of the winner's cooldown, never more.
    assert all(1 <= r.retry_after_s <= 600 for r in refused)
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM app.digest_runs")).scalar() == 1


def test_concurrent_claims_never_deadlock_one_wins_and_the_rest_are_told_to_wait(
    pipeline_engine: Engine, project: int
) -> None:
    """Exclusion constraints can deadlock when two inserts wait on each other's row;
    Postgres then aborts one with `deadlock detected`, which reached callers as a 500.
    Claims queue on a lock instead, so each loser sees the winner's committed row."""
    request = runs.RunRequest(period_start=WEEK, project_id=project)
    for _ in range(20):
        outcomes = _claim_at_once(pipeline_engine, request, 20)
        won = [o for o in outcomes if isinstance(o, int)]
        others = [o for o in outcomes if not isinstance(o, int | runs.CooldownActiveError)]
        assert others == []
        assert len(won) == 1
        assert len(outcomes) == 20
        with pipeline_engine.begin() as conn:
            runs.release(conn, won[0], "freed for the next round")


def _claim_at_once(engine: Engine, request: runs.RunRequest, callers: int) -> list[Any]:
    barrier = threading.Barrier(callers)
    outcomes: list[Any] = []

    def claim() -> None:
        barrier.wait()
        try:
            outcomes.append(runs.claim_now(engine, request, 600))
        except Exception as exc:  # anything but a cooldown refusal fails the caller's test
            outcomes.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def test_a_released_slot_lets_the_next_run_start(pipeline_engine: Engine, project: int) -> None:
    request = runs.RunRequest(period_start=WEEK, project_id=project)
    first = runs.claim_now(pipeline_engine, request, 600)
    with pytest.raises(runs.CooldownActiveError):
        runs.claim_now(pipeline_engine, request, 600)
    with pipeline_engine.begin() as conn:
        runs.release(conn, first, "launch failed")
    assert runs.claim_now(pipeline_engine, request, 600) != first


def test_the_schedule_waits_out_the_cooldown_instead_of_skipping_the_week(
    pipeline_engine: Engine, project: int
) -> None:
    request = runs.RunRequest(period_start=WEEK)
    first = runs.claim_now(pipeline_engine, request, 1)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    # wait_s is only the give-up deadline; a one-second cooldown ends long before it.
    second = start_run(pipeline_engine, request, 1, wait_s=60, sleep=sleep)
    assert second != first
    assert waits, "the second run started without waiting for the cooldown"
    assert all(0 < w <= 1 for w in waits)  # never more than the cooldown still left
    with pipeline_engine.connect() as conn:
        ended, began = conn.execute(
            text(
                "SELECT (SELECT upper(cooldown) FROM app.digest_runs WHERE id = :a), "
                "(SELECT lower(cooldown) FROM app.digest_runs WHERE id = :b)"
            ),
            {"a": first, "b": second},
        ).one()
    assert began >= ended  # Postgres' clock: the second started after the first's cooldown


# --------------------------------------------------------------------------- Resend limits


def _client(fake: FakeResend, **kw: Any) -> ResendClient:
    return ResendClient(
        fake.base_url,
        API_KEY,
        pacer=Pacer(kw.pop("rate", 2.0)),
        retry=RetryPolicy(**kw),
    )


def _email(to: str, subject: str = "hi") -> dict[str, Any]:
    return {"from": "a@lytics.test", "to": [to], "subject": subject, "html": "<p>x</p>"}


def _most_in_one_second(fake: FakeResend) -> int:
    """The most requests the server received within any one second (Resend's window)."""
    arrivals = sorted(r.at for r in fake.requests)
    return max(
        sum(1 for later in arrivals[i:] if later - first < 1.0) for i, first in enumerate(arrivals)
    )


def test_pacing_defaults_to_two_requests_per_second_without_headers() -> None:
    # The server would take 100/s and announces nothing: only the client's pace limits.
    with fake_resend(limit=100, send_rate_headers=False) as fake, _client(fake) as client:
        for i in range(5):
            client.send(_email(f"p{i}@example.com"), f"k{i}")
    assert len(fake.requests) == 5
    assert _most_in_one_second(fake) <= 2


def test_pacing_follows_the_ratelimit_headers() -> None:
    with fake_resend(limit=3) as fake, _client(fake) as client:
        for i in range(8):
            client.send(_email(f"p{i}@example.com"), f"k{i}")
        # The first answer announced 3/s: the client now paces at that, not at 2/s ...
        assert client.pacer.interval == pytest.approx(1 / 3)
    # ... and never more than the announced limit within a second, as the server saw it.
    assert _most_in_one_second(fake) <= 3
    assert 429 not in fake.statuses()


def test_backoff_doubles_with_jitter_and_recovers() -> None:
    with fake_resend() as fake, _client(fake, rate=100, backoff_s=0.1) as client:
        fake.inject("server_error", times=3)
        client.send(_email("x@example.com"), "k1")
        delays = client.stats.delays
    assert fake.statuses() == [500, 500, 500, 200]
    for delay, nominal in zip(delays, (0.1, 0.2, 0.4), strict=True):
        assert nominal <= delay <= nominal * 1.25
    assert RetryPolicy().backoff_s * 2**2 == 2.0  # the default schedule: 0.5 s, 1 s, 2 s


def test_rate_limit_429_honours_retry_after() -> None:
    with fake_resend() as fake, _client(fake, rate=100) as client:
        fake.inject("rate_limit", times=2, retry_after=0.3)
        client.send(_email("x@example.com"), "k1")
    at = [r.at for r in fake.requests]
    assert fake.statuses() == [429, 429, 200]
    assert at[1] - at[0] >= 0.28
    assert at[2] - at[1] >= 0.28


def test_quota_429_and_validation_422_are_not_retried() -> None:
    with fake_resend() as fake, _client(fake, rate=100) as client:
        fake.inject("quota")
        with pytest.raises(QuotaExceededError):
            client.send(_email("x@example.com"), "k1")
        fake.inject("validation")
        with pytest.raises(RejectedError):
            client.send(_email("x@example.com"), "k2")
    assert fake.statuses() == [429, 422]
    assert fake.emails == []


def test_409_concurrent_is_retried_and_409_invalid_is_not() -> None:
    with fake_resend(processing_delay_s=0.3) as fake:
        ids: list[str] = []

        def send() -> None:
            with _client(fake, rate=100, backoff_s=0.2) as client:
                ids.append(client.send(_email("x@example.com"), "same-key"))

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert 409 in fake.statuses()
        assert len(ids) == 2
        assert ids[0] == ids[1]
        assert fake.per_recipient() == {"x@example.com": 1}

        conflicts = fake.statuses().count(409)
        with _client(fake, rate=100) as client, pytest.raises(RejectedError) as err:
            client.send(_email("x@example.com", subject="other body"), "same-key")
        assert err.value.name == "invalid_idempotent_request"
        assert fake.statuses().count(409) == conflicts + 1  # answered once, never retried


def test_a_429_storm_slows_the_run_but_loses_and_duplicates_nothing(
    pipeline_engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    fake.inject("rate_limit", times=12, retry_after=0.05)
    report = _run(pipeline_engine, _uncooled(settings, fake, resend_batch_size=2))
    assert fake.statuses().count(429) == 12
    assert report.sent == len(EMAILS)
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)


def test_quota_exhausted_mid_run_stops_and_the_next_run_sends_the_rest(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    cfg = _uncooled(settings, fake, resend_batch_size=2)
    fake.inject("slow", seconds=0)  # the first batch goes through ...
    fake.inject("quota")  # ... the second hits the daily quota
    report = _run(pipeline_engine, cfg)
    assert report.sent == 2
    assert report.stopped is not None
    assert "quota" in report.stopped
    assert sum(1 for s in deliveries(engine).values() if s == "pending") == len(EMAILS) - 2
    assert _run(pipeline_engine, cfg).sent == len(EMAILS) - 2
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)


def test_a_refused_batch_is_resent_one_by_one_and_only_the_bad_address_fails(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    add_members(engine, project, ["not-an-address"])
    report = _run(pipeline_engine, _uncooled(settings, fake))
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)
    assert deliveries(engine)["not-an-address"] == "failed"
    assert report.errors == 1
    assert report.sent == len(EMAILS)
    # Someone was not mailed: the run failed (as its Dagster run does), its slot is free.
    assert _digest_run(engine, report.run_id) == ("failed", len(EMAILS), True)
    with engine.connect() as conn:
        error = conn.execute(
            text("SELECT error FROM app.digest_runs WHERE id = :id"), {"id": report.run_id}
        ).scalar_one()
    assert error == "1 recipient(s) not sent"


def test_a_lifted_suppression_holds_until_a_new_bounce(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    from lytics.digests import recipients

    later = WEEK + timedelta(days=7)
    seed_week(engine, project, later, sessions=50)
    earlier = WEEK - timedelta(days=7)
    target = EMAILS[0]

    def bounce(delivery_id: str) -> None:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO raw.webhook_deliveries (project_id, provider, delivery_id, "
                    "event_type, headers, body, payload) VALUES (:p, 'resend', :d, "
                    "'email.bounced', '{}', 'x', :payload)"
                ),
                {
                    "p": project,
                    "d": delivery_id,
                    "payload": json.dumps({"type": "email.bounced", "data": {"to": [target]}}),
                },
            )

    cfg = _uncooled(settings, fake)
    bounce("b1")
    _run(pipeline_engine, cfg, week=earlier, weeks=[earlier])
    assert target not in fake.per_recipient()
    with engine.begin() as conn:
        assert recipients.unsuppress(conn, target)
    _run(pipeline_engine, cfg)  # the old bounce does not bring the suppression back
    assert fake.per_recipient()[target] == 1
    bounce("b2")  # a new one does
    _run(pipeline_engine, cfg, week=later, weeks=[later])
    assert fake.per_recipient()[target] == 1
    assert deliveries(engine, later)[target] == "suppressed"


@pytest.mark.slow
def test_a_thousand_recipients_at_two_requests_per_second(
    pipeline_engine: Engine, engine: Engine, settings: Settings, project: int
) -> None:
    """1,007 recipients against a server that takes 2 requests/s: 11 batch requests."""
    many = [f"reader{i:04d}@example.com" for i in range(1000)]
    add_members(engine, project, many)
    with fake_resend(limit=2) as server:
        cfg = digest_settings(
            settings, server, digest_cooldown_seconds=0, resend_rate_per_second=2.0
        )
        report = _run(pipeline_engine, cfg)
    assert report.sent == len(many) + len(EMAILS)
    assert set(server.per_recipient().values()) == {1}
    assert len(server.requests) == 11  # 100 per /emails/batch call
    assert _most_in_one_second(server) <= 2  # never faster than 2 requests/s
    assert 429 not in server.statuses()


def test_a_quota_stop_while_resending_a_maybe_sent_batch_keeps_it_claimed(
    pipeline_engine: Engine, engine: Engine, settings: Settings, fake: FakeResend, project: int
) -> None:
    cfg = _uncooled(settings, fake, resend_batch_size=3)
    with _first_claimed_batch(pipeline_engine, cfg) as (client, group):
        assert group is not None
        assert group.batch_key is not None
        client.send_batch(group.payloads, group.batch_key)  # accepted; then the crash
    fake.inject("quota")
    _run(pipeline_engine, cfg)
    states = deliveries(engine)
    # Not back to pending: re-planned into another batch they would be mailed twice.
    assert sorted(states.values()).count("claimed") == 3
    _run(pipeline_engine, cfg)
    assert fake.per_recipient() == dict.fromkeys(EMAILS, 1)
