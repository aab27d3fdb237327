"""The digest's entry points: a run (Dagster, CLI), a preview and a test send (API, CLI).

Each builds the message through `sender.message_for`, so the preview shows the
bytes a run would send and a test send mails the same thing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import date

from sqlalchemy import Connection, Engine

from lytics.digests import runs
from lytics.digests.attempts import Attempt
from lytics.digests.config import resend_client, send_config
from lytics.digests.content import build, project_info
from lytics.digests.render import Message
from lytics.digests.resend import ResendClient
from lytics.digests.sender import DigestSender, RunReport, SendConfig, message_for, start_run
from lytics.settings import Settings

TEST_SUBJECT_PREFIX = "[Test] "


class NothingToSendError(LookupError):
    """No digest for this project and week: it had no data, so nobody would get one."""


class SuppressedError(ValueError):
    def __init__(self, email: str, reason: str) -> None:
        super().__init__(f"{email} is suppressed ({reason}); digests are never sent to it")
        self.reason = reason


def run_digest(
    engine: Engine,
    settings: Settings,
    request: runs.RunRequest,
    weeks: Sequence[date],
    *,
    run_id: int | None = None,
    attempt: Attempt | None = None,
    wait_s: float = 0.0,
    progress: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RunReport:
    """Claim (or adopt) a run inside the cooldown rules, then send every week in `weeks`.

    Configuration errors surface before a cooldown slot is taken; a run adopted from
    the API (which took the slot) is then marked failed and its slot freed.
    """
    try:
        config = send_config(settings)
        client = resend_client(settings, sleep=sleep)
    except Exception as exc:
        if run_id is not None:
            with engine.begin() as conn:
                runs.release(conn, run_id, f"{type(exc).__name__}: {exc}")
        raise
    with client:
        run_id = start_run(
            engine,
            request,
            settings.digest_cooldown_seconds,
            run_id=run_id,
            wait_s=wait_s,
            sleep=sleep,
        )
        sender = DigestSender(engine, client, config, attempt=attempt, on_progress=progress)
        return sender.run(request, weeks, run_id)


def preview(
    conn: Connection, config: SendConfig, project_id: int, email: str, week: date
) -> Message:
    """The message `email` gets for `week`, exactly as a run would send it."""
    content = build(conn, project_info(conn, project_id), week)
    if not content.has_data:
        raise NothingToSendError(
            f"no data for {content.project.slug} in the week of {week.isoformat()}: "
            "no digest would be sent"
        )
    return Message.from_payload(message_for(config, content, email.lower()))


def suppression_reason(conn: Connection, email: str) -> str | None:
    value = conn.exec_driver_sql(
        "SELECT app.email_suppression_reason(%(e)s)", {"e": email}
    ).scalar()
    return str(value) if value is not None else None


def message_for_test_send(
    conn: Connection, config: SendConfig, project_id: int, email: str, week: date
) -> Message:
    """The digest for a test send; raises when the address is suppressed or there is no data."""
    reason = suppression_reason(conn, email)
    if reason is not None:
        raise SuppressedError(email, reason)
    message = preview(conn, config, project_id, email, week)
    return Message(
        message.sender,
        message.to,
        TEST_SUBJECT_PREFIX + message.subject,
        message.html,
        message.text,
        message.headers,
    )


def send_test(client: ResendClient, config: SendConfig, message: Message) -> str:
    """Send now, outside the outbox: no week is marked as sent for anyone."""
    key = f"{config.key_prefix}test/{uuid.uuid4()}"
    return client.send(message.payload(), key)
