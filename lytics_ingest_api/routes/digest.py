"""Digest preview, test sends, launches, status, unsubscribe and the email-event summary.

Database work runs as `lytics_reader` with `lytics.project_id` set for the
transaction, as every read endpoint does: row-level security keeps a key to its
own project's members, runs and deliveries (migration 0005). The digest's
content and rendering are the core's (`lytics.digests`), synchronous code run
in a worker thread, so the preview is produced by the very function a run uses.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo

import anyio.to_thread
from litestar import MediaType, Request, Response, get, post
from litestar.params import JSONBody, QueryParameter
from msgspec import Struct
from psycopg.rows import dict_row
from sqlalchemy import Connection, Engine, pool

from lytics.dagster_api import DagsterApi, DagsterApiError
from lytics.digests import launch, runs, service
from lytics.digests.config import resend_client, send_config
from lytics.digests.resend import RejectedError, ResendError, StopSendingError
from lytics.digests.unsubscribe import InvalidTokenError, UnsubscribeSigner
from lytics.digests.weeks import (
    WeekNotOverError,
    last_complete_week,
    parse_week,
    require_ended,
)
from lytics.settings import MissingSettingError, Settings
from lytics.warehouse.engine import create_sync_engine
from lytics_ingest_api.admission import admit
from lytics_ingest_api.auth import Principal, require_secret_key
from lytics_ingest_api.database import READER_ROLE, project_transaction
from lytics_ingest_api.errors import ApiError, bad_request

log = logging.getLogger(__name__)
T = TypeVar("T")
STATUS_TIMEOUT_S = 2.0
EARLIEST_WEEK = date(2000, 1, 3)
LATEST_WEEK = date(2199, 12, 30)
# The HTML pages are styled inline (as mail clients require); the API's default policy
# (default-src 'none') would block those styles in a browser. Nothing else may load.
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

SUMMARY_BY_TYPE = """
SELECT replace(coalesce(payload ->> 'type', event_type), 'email.', '') AS event_type,
       count(*) AS events
FROM raw.webhook_deliveries
WHERE provider = 'resend' AND received_at >= now() - interval '24 hours'
GROUP BY 1 ORDER BY events DESC, 1
"""
SUMMARY_LATEST = """
SELECT delivery_id, replace(coalesce(payload ->> 'type', event_type), 'email.', '') AS event_type,
       coalesce(payload -> 'data' -> 'to' ->> 0, payload -> 'data' ->> 'to') AS email,
       payload -> 'data' ->> 'subject' AS subject, received_at
FROM raw.webhook_deliveries
WHERE provider = 'resend'
ORDER BY received_at DESC, id DESC LIMIT 10
"""


# --------------------------------------------------------------------------- plumbing


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _engine(request: Request[Any, Any, Any]) -> Engine:
    """A sync engine for the core's digest code, as the reader role.

    NullPool: these are rare admin calls, and nothing is left open when the app stops.
    """
    engine: Engine | None = request.app.state.get("digest_engine")
    if engine is None:
        engine = create_sync_engine(
            _settings(request).require_database_url(), role=READER_ROLE, poolclass=pool.NullPool
        )
        request.app.state["digest_engine"] = engine
    return engine


@contextmanager
def _project_transaction(engine: Engine, project_id: int) -> Iterator[Connection]:
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "SELECT set_config('lytics.project_id', %(p)s, true)", {"p": str(project_id)}
        )
        yield conn


async def _in_thread(fn: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(fn)


def _today(settings: Settings) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(settings.digest_timezone)).date()


def _week(settings: Settings, value: str | None) -> date:
    if value is None:
        return last_complete_week(_today(settings))
    try:
        monday = parse_week(value)
    except (ValueError, OverflowError) as exc:
        raise bad_request("week must be a date (YYYY-MM-DD)", field="week") from exc
    # Far-off dates would overflow the previous-week arithmetic; no data lives there.
    if not EARLIEST_WEEK <= monday <= LATEST_WEEK:
        raise bad_request("week is out of range", field="week")
    return monday


def _address(value: str, field: str = "email") -> str:
    """A plausible address, checked before it reaches SQL or Resend."""
    address = value.strip()
    if (
        not 3 <= len(address) <= 320
        or address.count("@") != 1
        or address.startswith("@")
        or address.endswith("@")
        or any(ch.isspace() or not ch.isprintable() for ch in address)
    ):
        raise bad_request("not an email address", field=field)
    return address.lower()


async def _principal(request: Request[Any, Any, Any], project: str | None = None) -> Principal:
    principal = await require_secret_key(request)
    admit(request, principal)
    if project is not None and project != principal.project_slug:
        raise ApiError(403, "forbidden", "this key belongs to another project", field="project")
    return principal


def _signing_config(settings: Settings) -> Any:
    try:
        return send_config(settings)
    except MissingSettingError as exc:
        raise ApiError(503, "not_configured", str(exc)) from exc


# --------------------------------------------------------------------------- preview


@get(
    "/v1/digest/preview",
    operation_id="digest_preview",
    tags=["digests"],
    summary="The digest exactly as it would be sent to `email` for `week`; nothing is sent",
    media_type=MediaType.HTML,
)
async def digest_preview(
    request: Request[Any, Any, Any],
    *,
    email: Annotated[str, QueryParameter(min_length=3, max_length=320)],
    project: Annotated[str | None, QueryParameter(max_length=63)] = None,
    week: Annotated[str | None, QueryParameter(description="Any day of the week")] = None,
    format: Annotated[
        Literal["html", "text", "json"], QueryParameter(description="html, text or json")
    ] = "html",
) -> Response[Any]:
    principal = await _principal(request, project)
    settings = _settings(request)
    monday = _week(settings, week)
    address = _address(email)
    config = _signing_config(settings)

    def render() -> Any:
        with _project_transaction(_engine(request), principal.project_id) as conn:
            return service.preview(conn, config, principal.project_id, address, monday)

    try:
        message = await _in_thread(render)
    except service.NothingToSendError as exc:
        raise ApiError(404, "no_data", str(exc)) from exc
    headers = {"Cache-Control": "no-store"}
    if format == "json":
        body = message.payload() | {"week": monday.isoformat()}
        return Response(body, media_type=MediaType.JSON, headers=headers)
    if format == "text":
        return Response(message.text, media_type=MediaType.TEXT, headers=headers)
    headers["Content-Security-Policy"] = PAGE_CSP
    return Response(message.html, media_type=MediaType.HTML, headers=headers)


# --------------------------------------------------------------------------- test send


class TestSend(Struct, forbid_unknown_fields=True):
    email: str
    week: str | None = None


@post(
    "/v1/digest/test",
    operation_id="digest_test",
    tags=["digests"],
    summary="Send this project's digest to one address now (marks no week as sent)",
    status_code=202,
)
async def digest_test(request: Request[Any, Any, Any], data: JSONBody[TestSend]) -> dict[str, Any]:
    principal = await _principal(request)
    settings = _settings(request)
    address = _address(data.email)
    monday = _week(settings, data.week)
    config = _signing_config(settings)

    def send() -> str:
        with _project_transaction(_engine(request), principal.project_id) as conn:
            message = service.message_for_test_send(
                conn, config, principal.project_id, address, monday
            )
        with resend_client(settings) as client:
            return service.send_test(client, config, message)

    try:
        provider_id = await _in_thread(send)
    except service.SuppressedError as exc:
        raise ApiError(409, "suppressed", str(exc), field="email") from exc
    except service.NothingToSendError as exc:
        raise ApiError(404, "no_data", str(exc)) from exc
    except MissingSettingError as exc:
        raise ApiError(503, "not_configured", str(exc)) from exc
    except RejectedError as exc:
        raise ApiError(422, "rejected", f"Resend refused the email: {exc}") from exc
    except (StopSendingError, ResendError) as exc:
        raise ApiError(502, "resend_unavailable", f"Resend: {exc}") from exc
    log.info("[DIGEST TEST] sent for %s", monday)
    return {"id": provider_id, "to": address, "week": monday.isoformat(), "test": True}


# --------------------------------------------------------------------------- weekly launch


class WeeklyLaunch(Struct, forbid_unknown_fields=True):
    scope: Literal["all", "email"] = "all"
    email: str | None = None
    week: str | None = None


@post(
    "/v1/digest/weekly",
    operation_id="digest_weekly",
    tags=["digests"],
    summary="Launch the weekly digest for this project (Dagster run); 429 inside the cooldown",
    status_code=202,
)
async def digest_weekly(
    request: Request[Any, Any, Any], data: JSONBody[WeeklyLaunch]
) -> dict[str, Any]:
    principal = await _principal(request)
    settings = _settings(request)
    if data.scope == "email" and not data.email:
        raise bad_request('scope "email" needs an email', field="email")
    address = _address(data.email) if data.scope == "email" and data.email else None
    monday = _week(settings, data.week)
    try:
        require_ended(monday, _today(settings))
    except WeekNotOverError as exc:
        raise bad_request(str(exc), field="week") from exc
    run_request = runs.RunRequest(
        period_start=monday,
        scope=data.scope,
        scope_email=address,
        project_id=principal.project_id,
    )
    engine = _engine(request)

    def claim() -> int:
        with _project_transaction(engine, principal.project_id) as conn:
            return runs.claim(conn, run_request, settings.digest_cooldown_seconds)

    try:
        digest_run_id = await _in_thread(claim)
    except runs.CooldownActiveError as exc:
        raise ApiError(
            429,
            "cooldown",
            f"a digest run started less than {settings.digest_cooldown_seconds} s ago; "
            f"retry in {exc.retry_after_s} s",
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from exc
    api = DagsterApi(settings.graphql_url)
    try:
        dagster_run_id = await api.launch_job(
            launch.JOB_NAME,
            run_config=launch.run_config(
                scope=data.scope,
                email=run_request.scope_email,
                project=principal.project_slug,
                digest_run_id=digest_run_id,
            ),
            tags=launch.tags(monday, digest_run_id),
        )
    except DagsterApiError as exc:
        reason = f"launch failed: {exc}"

        def release() -> None:
            # Nothing ran: give the cooldown slot back so the caller can simply retry.
            with _project_transaction(engine, principal.project_id) as conn:
                runs.release(conn, digest_run_id, reason)

        await _in_thread(release)
        raise ApiError(503, "dagster_unavailable", str(exc), headers={"Retry-After": "30"}) from exc

    def record() -> None:
        with _project_transaction(engine, principal.project_id) as conn:
            conn.exec_driver_sql(
                "UPDATE app.digest_runs SET dagster_run_id = %(d)s WHERE id = %(id)s",
                {"d": dagster_run_id, "id": digest_run_id},
            )

    await _in_thread(record)
    log.info("[WEEKLY DIGEST] launched run %s (digest run %s)", dagster_run_id, digest_run_id)
    return {
        "run_id": dagster_run_id,
        "digest_run_id": digest_run_id,
        "week": monday.isoformat(),
        "scope": data.scope,
    }


# --------------------------------------------------------------------------- status


LAST_RUN = """
SELECT id, period_start, period_end, scope, scope_email, project_id, status, dagster_run_id,
       started_at, finished_at, sent, skipped, errors, error, upper(cooldown) AS cooldown_until
FROM app.digest_runs ORDER BY started_at DESC, id DESC LIMIT 1
"""
RUN_DELIVERIES = """
SELECT status, count(*) AS recipients FROM app.digest_deliveries
WHERE period_start >= %(start)s AND period_start <= coalesce(%(end)s, %(start)s)
GROUP BY status ORDER BY status
"""


@get(
    "/v1/digest/status",
    operation_id="digest_status",
    tags=["digests"],
    summary="The last digest run (this project's or the scheduled one) and its recipients",
)
async def digest_status(request: Request[Any, Any, Any]) -> dict[str, Any]:
    principal = await _principal(request)
    async with project_transaction(request.app.state.reader_pool, principal.project_id) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(LAST_RUN)
        last = await cur.fetchone()
        recipients: dict[str, int] = {}
        if last is not None:
            await cur.execute(
                RUN_DELIVERIES, {"start": last["period_start"], "end": last["period_end"]}
            )
            recipients = {r["status"]: int(r["recipients"]) for r in await cur.fetchall()}
        await cur.execute("SELECT app.digest_cooldown_remaining() AS remaining")
        remaining = await cur.fetchone()
    dagster_status = None
    if last is not None and last["dagster_run_id"]:
        # Dagster's own view (QUEUED, STARTED, ...); its absence never fails this answer.
        api = DagsterApi(_settings(request).graphql_url, timeout_s=STATUS_TIMEOUT_S)
        try:
            dagster_status = await api.run_status(str(last["dagster_run_id"]))
        except DagsterApiError as exc:
            log.info("dagster status unavailable: %s", exc)
    return {
        "project": principal.project_slug,
        "last_run": last,
        "dagster_status": dagster_status,
        "recipients": recipients,
        "cooldown_remaining_s": round(float(remaining["remaining"]) if remaining else 0.0, 1),
    }


# --------------------------------------------------------------------------- unsubscribe


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:32rem;
margin:3rem auto;padding:0 1rem;color:#101828;">
<h1 style="font-size:1.4rem;">{title}</h1><p>{text}</p>{form}</body></html>
"""


def _page(title: str, text: str, form: str = "", status: int = 200) -> Response[str]:
    body = PAGE.format(title=html.escape(title), text=html.escape(text), form=form)
    return Response(
        body,
        status_code=status,
        media_type=MediaType.HTML,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": PAGE_CSP,
        },
    )


def _signer(request: Request[Any, Any, Any]) -> UnsubscribeSigner:
    return UnsubscribeSigner(_settings(request).require_secret_key())


@get(
    "/v1/digest/unsubscribe",
    operation_id="digest_unsubscribe_page",
    tags=["digests"],
    summary="The unsubscribe link: a confirmation page (link scanners must not unsubscribe)",
    media_type=MediaType.HTML,
)
async def unsubscribe_page(
    request: Request[Any, Any, Any], token: Annotated[str, QueryParameter(max_length=2000)]
) -> Response[str]:
    try:
        who = _signer(request).verify(token)
    except InvalidTokenError:
        return _page("Invalid link", "This unsubscribe link is not valid.", status=400)
    form = (
        f'<form method="post" action="?token={html.escape(token)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit" style="padding:.5rem 1rem;">Unsubscribe</button></form>'
    )
    return _page(
        "Unsubscribe from the weekly digest",
        f"Stop the weekly digest for {who.email}?",
        form,
    )


@post(
    "/v1/digest/unsubscribe",
    operation_id="digest_unsubscribe",
    tags=["digests"],
    summary="One-click unsubscribe (RFC 8058: mail clients POST List-Unsubscribe=One-Click)",
    media_type=MediaType.HTML,
    status_code=200,
)
async def unsubscribe(
    request: Request[Any, Any, Any], token: Annotated[str, QueryParameter(max_length=2000)]
) -> Response[str]:
    try:
        who = _signer(request).verify(token)
    except InvalidTokenError:
        return _page("Invalid link", "This unsubscribe link is not valid.", status=400)

    def switch_off() -> int:
        with _project_transaction(_engine(request), who.project_id) as conn:
            return conn.exec_driver_sql(
                "UPDATE app.project_members m SET digest_enabled = false FROM app.users u "
                "WHERE u.id = m.user_id AND lower(u.email) = %(e)s "
                "AND m.project_id = %(p)s AND m.digest_enabled",
                {"e": who.email, "p": who.project_id},
            ).rowcount

    changed = await _in_thread(switch_off)
    log.info("[DIGEST] unsubscribe project=%s changed=%s", who.project_id, changed)
    # The same answer whether or not anything changed: a token reveals no membership.
    return _page("Unsubscribed", f"{who.email} will not receive this weekly digest any more.")


# --------------------------------------------------------------------------- email events


@get(
    "/v1/email-events/summary",
    operation_id="email_events_summary",
    tags=["digests"],
    summary="Resend email events of the last 24 hours by type, and the latest 10 events",
)
async def email_events_summary(request: Request[Any, Any, Any]) -> dict[str, Any]:
    principal = await _principal(request)
    async with project_transaction(request.app.state.reader_pool, principal.project_id) as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(SUMMARY_BY_TYPE)
        by_type = {r["event_type"]: int(r["events"]) for r in await cur.fetchall()}
        await cur.execute(SUMMARY_LATEST)
        latest = await cur.fetchall()
    return {
        "project": principal.project_slug,
        "window_hours": 24,
        "total": sum(by_type.values()),
        "by_type": by_type,
        "latest": latest,
    }


ROUTES: list[Any] = [
    digest_preview,
    digest_test,
    digest_weekly,
    digest_status,
    unsubscribe_page,
    unsubscribe,
    email_events_summary,
]
