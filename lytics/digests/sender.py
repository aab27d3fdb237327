"""One digest run: plan the outbox, claim, render, send, record. Exactly once per recipient.

The argument, step by step (docs/digests.md has the long form):

1. `plan` inserts one row per (week, project, recipient) with ON CONFLICT DO NOTHING:
   however many runs plan the same week, each recipient has one row.
2. A row is claimed (`pending` -> `claimed`) under `FOR UPDATE SKIP LOCKED` in a
   transaction that also stores the rendered message; two workers never claim the
   same row, and the claim commits before any request is made.
3. The request carries the row's Idempotency-Key (or its batch's) and the stored body.
   If the process dies after the claim, before or after Resend accepted the request,
   the row stays `claimed` by that attempt; once the attempt is over, the next one
   (a retry of the same digest run, or a new run) resends the same body with the same
   key, and Resend answers with the first email's id instead of sending again.
4. Only an answer from Resend moves a row on: `sent` with its id; back to `pending`
   when Resend said no without sending (rate limit, quota); `failed` when it refused
   for good. A run that stops early leaves the rest `pending` for the next run, so
   nobody is skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine

from lytics.digests import outbox, runs
from lytics.digests.attempts import Attempt
from lytics.digests.content import DigestContent, Project, build, project_info
from lytics.digests.render import render
from lytics.digests.resend import (
    RateLimitedError,
    RejectedError,
    ResendClient,
    ResendError,
    StopSendingError,
    UnavailableError,
)
from lytics.digests.unsubscribe import UnsubscribeSigner

log = logging.getLogger(__name__)

# Resend keeps idempotency keys for 24 hours; after that a resend could deliver twice.
IDEMPOTENCY_WINDOW_S = 23 * 3600


@dataclass(frozen=True)
class SendConfig:
    sender: str  # "Name <address>"
    public_url: str
    signer: UnsubscribeSigner
    key_prefix: str
    batch_size: int = 100
    idempotency_window_s: float = IDEMPOTENCY_WINDOW_S


@dataclass
class RunReport:
    run_id: int | None
    weeks: list[date]
    sent: int = 0
    skipped: int = 0
    errors: int = 0
    stopped: str | None = None
    recipients: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.recipients:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        return counts


class ContentCache:
    """One content computation per (project, week): every member gets the same numbers."""

    def __init__(self) -> None:
        self._items: dict[tuple[int, date], DigestContent] = {}
        self._projects: dict[int, Project] = {}

    def get(self, conn: Connection, project_id: int, week: date) -> DigestContent:
        key = (project_id, week)
        if key not in self._items:
            if project_id not in self._projects:
                self._projects[project_id] = project_info(conn, project_id)
            self._items[key] = build(conn, self._projects[project_id], week)
        return self._items[key]


def message_for(config: SendConfig, content: DigestContent, recipient: str) -> dict[str, Any]:
    """The payload Resend receives; the preview endpoint renders through here too."""
    url = config.signer.url(config.public_url, content.project.id, recipient)
    return render(content, sender=config.sender, recipient=recipient, unsubscribe_url=url).payload()


class DigestSender:
    def __init__(
        self,
        engine: Engine,
        client: ResendClient,
        config: SendConfig,
        *,
        attempt: Attempt | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.client = client
        self.config = config
        self.attempt = attempt or Attempt()
        self.cache = ContentCache()
        self._progress = on_progress or (lambda _msg: None)

    # ------------------------------------------------------------------ a run

    def run(self, request: runs.RunRequest, weeks: Iterable[date], run_id: int) -> RunReport:
        started = time.monotonic()
        report = RunReport(run_id, list(weeks))
        error: str | None = None
        try:
            with self.engine.begin() as conn:
                added = outbox.sync_suppressions(conn)
            if added:
                self._progress(f"{added} address(es) newly suppressed from Resend webhooks")
            for week in report.weeks:
                scope = outbox.Scope(week, request.project_id, request.scope_email)
                self._week(scope, run_id, report)
                if report.stopped:
                    break
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            with self.engine.begin() as conn:
                for week in report.weeks:
                    scope = outbox.Scope(week, request.project_id, request.scope_email)
                    report.recipients += [
                        r | {"week": week.isoformat()} for r in outbox.report(conn, scope)
                    ]
                left = sum(1 for r in report.recipients if r["status"] in ("pending", "claimed"))
                report.errors += left
                runs.finish(
                    conn,
                    run_id,
                    sent=report.sent,
                    skipped=report.skipped,
                    errors=report.errors,
                    # Status follows the Dagster run's: the asset fails when anyone was
                    # not handled, so the digest run is failed too (and frees the cooldown).
                    error=error
                    or report.stopped
                    or (f"{report.errors} recipient(s) not sent" if report.errors else None),
                )
            report.elapsed_s = time.monotonic() - started
        return report

    def _week(self, scope: outbox.Scope, run_id: int, report: RunReport) -> None:
        with self.engine.begin() as conn:
            planned = outbox.plan(conn, scope, run_id, self.config.key_prefix)
        self._progress(f"week {scope.week}: {planned} new outbox row(s)")
        # First whatever an attempt that is over left claimed: same bodies, same keys.
        with self.engine.begin() as conn:
            expired, handles = outbox.stale_claimed(
                conn, scope, self.attempt, self.config.idempotency_window_s
            )
            if expired:
                outbox.set_status(
                    conn,
                    expired,
                    "failed",
                    "claimed more than 23 h ago and never confirmed: Resend no longer "
                    "deduplicates its key, so it is not resent automatically; check Resend's "
                    "logs before sending it by hand",
                )
                report.errors += len(expired)
        for handle in dict.fromkeys(handles):
            with self.engine.begin() as conn:
                group = outbox.load_group(conn, handle, run_id, self.attempt.id)
            if group is not None:
                self._send(group, report)
                if report.stopped:
                    return
        while not report.stopped:
            group = self._claim(scope, run_id, report)
            if group is None:
                return
            if group.ids:
                self._send(group, report)

    # ------------------------------------------------------------------ claim

    def _claim(self, scope: outbox.Scope, run_id: int, report: RunReport) -> outbox.Claimed | None:
        with self.engine.begin() as conn:
            rows = outbox.lock_pending(conn, scope, self.config.batch_size)
            if not rows:
                return None
            sendable: list[tuple[int, str, dict[str, Any]]] = []
            for row in rows:
                if row["suppressed"]:
                    outbox.set_status(conn, [row["id"]], "suppressed", row["suppressed"])
                    report.skipped += 1
                    continue
                if not row["enabled"]:
                    outbox.set_status(conn, [row["id"]], "skipped", "unsubscribed")
                    report.skipped += 1
                    continue
                content = self.cache.get(conn, row["project_id"], scope.week)
                if not content.has_data:
                    outbox.set_status(conn, [row["id"]], "skipped", "no data this week")
                    report.skipped += 1
                    continue
                payload = message_for(self.config, content, row["recipient"])
                sendable.append((row["id"], row["idempotency_key"], payload))
            if not sendable:
                return outbox.Claimed([], [], [], None)
            keys = [key for _, key, _ in sendable]
            group = outbox.Claimed(
                ids=[row_id for row_id, _, _ in sendable],
                payloads=[payload for _, _, payload in sendable],
                keys=keys,
                batch_key=outbox.batch_key(keys) if len(sendable) > 1 else None,
            )
            outbox.mark_claimed(conn, group, run_id, self.attempt.id, group.payloads)
        return group

    # ------------------------------------------------------------------ send

    def _send(self, group: outbox.Claimed, report: RunReport) -> None:
        try:
            if group.batch_key is not None:
                ids = self.client.send_batch(group.payloads, group.batch_key)
            else:
                ids = [self.client.send(group.payloads[0], group.keys[0])]
        except RejectedError as exc:
            if group.batch_key is not None and exc.name != "invalid_idempotent_request":
                # Resend validates a batch as a whole and sent none of it: find the bad one.
                with self.engine.begin() as conn:
                    outbox.unbatch(conn, group.ids)
                for row_id, key, payload in zip(group.ids, group.keys, group.payloads, strict=True):
                    self._send(outbox.Claimed([row_id], [payload], [key], None), report)
                    if report.stopped:
                        return
                return
            with self.engine.begin() as conn:
                outbox.set_status(conn, group.ids, "failed", str(exc))
            report.errors += len(group.ids)
            return
        except (RateLimitedError, StopSendingError) as exc:
            with self.engine.begin() as conn:
                if group.recovered:
                    # This request sent nothing, but an earlier one may have: keep the
                    # stored body and key for the next run.
                    outbox.note_error(conn, group.ids, str(exc))
                else:
                    outbox.release(conn, group.ids, str(exc))
            report.stopped = str(exc)
            return
        except UnavailableError as exc:
            # Maybe sent: the rows stay claimed and the next run resends them with their key.
            with self.engine.begin() as conn:
                outbox.note_error(conn, group.ids, str(exc))
            report.stopped = str(exc)
            return
        except ResendError as exc:  # pragma: no cover - every subclass is handled above
            report.stopped = str(exc)
            return
        with self.engine.begin() as conn:
            outbox.mark_sent(conn, group.ids, ids)
        report.sent += len(group.ids)
        self._progress(f"sent {len(group.ids)} ({report.sent} so far)")


def start_run(
    engine: Engine,
    request: runs.RunRequest,
    cooldown_s: int,
    *,
    run_id: int | None = None,
    wait_s: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Adopt a run the API already claimed, or claim one, waiting up to `wait_s` for the
    cooldown (the schedule waits; a person gets the refusal at once)."""
    if run_id is not None:
        with engine.begin() as conn:
            runs.adopt(conn, run_id, request.dagster_run_id)
        return run_id
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return runs.claim_now(engine, request, cooldown_s)
        except runs.CooldownActiveError as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
            sleep(min(exc.retry_after_s, remaining))
