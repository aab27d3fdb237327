"""Digest preview, test sends, launches and status, for the secret key's project.

Database work runs as `lytics_reader` with `lytics.project_id` set for the
transaction, as every read endpoint does: row-level security keeps a key to its
own project's members, runs and deliveries (migration 0005). The digest's
content, rendering and request rules are the core's (`lytics.digests`), synchronous
code run in a worker thread, so the preview is produced by the very function a run
uses. The unsubscribe pages are in `digest_unsubscribe`, the email-event summary in
`email_events`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

import anyio.to_thread
from litestar import MediaType, Request, Response, get, post
from litestar.params import JSONBody, QueryParameter
from msgspec import Struct
from sqlalchemy import Engine

from lytics.dagster_api import DagsterApi, DagsterApiError
from lytics.digests import launch, requested, runs, service
from lytics.digests.config import resend_client, send_config
from lytics.digests.resend import RejectedError, ResendError, StopSendingError
from lytics.digests.scoped import project_transaction, reader_engine
from lytics.digests.weeks import (
    WeekNotOverError,
    require_ended,
)
from lytics.settings import MissingSettingError, Settings
from lytics.warehouse.logins import READER
from lytics_ingest_api.errors import ApiError, bad_request
from lytics_ingest_api.openapi_docs import SECRET_ERRORS, responses
from lytics_ingest_api.project_access import KeyPrincipal, Reader
from lytics_ingest_api.response_bodies import (
    DigestLaunched,
    DigestStatus,
    DigestTestSent,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
STATUS_TIMEOUT_S = 2.0
# The HTML pages are styled inline (as mail clients require); the API's default policy
# (default-src 'none') would block those styles in a browser. Nothing else may load.
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

# --------------------------------------------------------------------------- plumbing


def settings_of(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def digest_engine(request: Request[Any, Any, Any]) -> Engine:
    """The core's digest code is synchronous: a sync engine as the reader role, made once."""
    engine: Engine | None = request.app.state.get("digest_engine")
    if engine is None:
        settings = settings_of(request)
        engine = reader_engine(settings.login(READER), settings.reader_statement_timeout_ms)
        request.app.state["digest_engine"] = engine
    return engine


async def in_thread(fn: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(fn)


def _today(settings: Settings) -> date:
    return requested.today(settings.digest_timezone)


def _week(settings: Settings, value: str | None) -> date:
    try:
        return requested.week(value, settings.digest_timezone)
    except requested.RequestError as exc:
        raise bad_request(str(exc), field="week") from exc


def _address(value: str) -> str:
    try:
        return requested.address(value)
    except requested.RequestError as exc:
        raise bad_request(str(exc), field="email") from exc


def _same_project(principal: KeyPrincipal, project: str | None) -> None:
    if project is not None and project != principal.project_slug:
        raise ApiError(403, "forbidden", "this key belongs to another project", field="project")


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
    responses=responses(None, *SECRET_ERRORS, 404),
)
async def digest_preview(
    request: Request[Any, Any, Any],
    principal: KeyPrincipal,
    *,
    email: Annotated[str, QueryParameter(min_length=3, max_length=320)],
    project: Annotated[str | None, QueryParameter(max_length=63)] = None,
    week: Annotated[str | None, QueryParameter(description="Any day of the week")] = None,
    format: Annotated[
        Literal["html", "text", "json"], QueryParameter(description="html, text or json")
    ] = "html",
) -> Response[Any]:
    _same_project(principal, project)
    settings = settings_of(request)
    monday = _week(settings, week)
    address = _address(email)
    config = _signing_config(settings)

    def render() -> Any:
        with project_transaction(digest_engine(request), principal.project_id) as conn:
            return service.preview(conn, config, principal.project_id, address, monday)

    try:
        message = await in_thread(render)
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
    responses=responses(DigestTestSent, *SECRET_ERRORS, 404, 409, 422, 502, status=202),
)
async def digest_test(
    request: Request[Any, Any, Any], principal: KeyPrincipal, data: JSONBody[TestSend]
) -> dict[str, Any]:
    settings = settings_of(request)
    address = _address(data.email)
    monday = _week(settings, data.week)
    config = _signing_config(settings)

    def send() -> str:
        with project_transaction(digest_engine(request), principal.project_id) as conn:
            message = service.message_for_test_send(
                conn, config, principal.project_id, address, monday
            )
        with resend_client(settings) as client:
            return service.send_test(client, config, message)

    try:
        provider_id = await in_thread(send)
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
    responses=responses(DigestLaunched, *SECRET_ERRORS, status=202),
)
async def digest_weekly(
    request: Request[Any, Any, Any], principal: KeyPrincipal, data: JSONBody[WeeklyLaunch]
) -> dict[str, Any]:
    settings = settings_of(request)
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
    engine = digest_engine(request)

    def claim() -> int:
        with project_transaction(engine, principal.project_id) as conn:
            return runs.claim(conn, run_request, settings.digest_cooldown_seconds)

    try:
        digest_run_id = await in_thread(claim)
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
            with project_transaction(engine, principal.project_id) as conn:
                runs.release(conn, digest_run_id, reason)

        await in_thread(release)
        raise ApiError(503, "dagster_unavailable", str(exc), headers={"Retry-After": "30"}) from exc

    def record() -> None:
        with project_transaction(engine, principal.project_id) as conn:
            conn.exec_driver_sql(
                # A retry that has already adopted the digest run named itself: keep that.
                "UPDATE app.digest_runs SET dagster_run_id = %(d)s"
                " WHERE id = %(id)s AND dagster_run_id IS NULL",
                {"d": dagster_run_id, "id": digest_run_id},
            )

    await in_thread(record)
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
    responses=responses(DigestStatus, *SECRET_ERRORS),
)
async def digest_status(
    request: Request[Any, Any, Any], principal: KeyPrincipal, reader: Reader
) -> dict[str, Any]:
    async with reader.cursor() as cur:
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
        api = DagsterApi(settings_of(request).graphql_url, timeout_s=STATUS_TIMEOUT_S)
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


# Behind the secret-key guard (lytics_ingest_api.project_access).
ROUTES: list[Any] = [digest_preview, digest_test, digest_weekly, digest_status]
