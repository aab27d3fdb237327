"""The digest's unsubscribe link: a confirmation page, and the one-click POST of RFC 8058.

No key: the link carries a token signed with the deployment's secret. The pages come
from the core's template (`lytics.digests.unsubscribe_page`); this module answers HTTP.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from litestar import MediaType, Request, Response, get, post
from litestar.params import QueryParameter

from lytics.digests import unsubscribe_page
from lytics.digests.scoped import project_transaction
from lytics.digests.unsubscribe import InvalidTokenError, Unsubscribe, UnsubscribeSigner
from lytics_ingest_api.openapi_docs import responses
from lytics_ingest_api.routes.digest import PAGE_CSP, digest_engine, in_thread, settings_of

log = logging.getLogger(__name__)


def _page(body: str, status: int = 200) -> Response[str]:
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


def _invalid_link() -> Response[str]:
    return _page(unsubscribe_page.page(*unsubscribe_page.INVALID), status=400)


_PAGE_ANSWERS = responses(None, 400, s400=str)


# Optional and unbounded for the framework: a missing or oversized token gets the same
# "invalid link" page as a forged one, not a JSON error a person would not understand.
UnsubscribeToken = Annotated[
    str | None, QueryParameter(description="The signed token of the unsubscribe link")
]
MAX_TOKEN = 2000


def _verified(request: Request[Any, Any, Any], token: str | None) -> Unsubscribe:
    if not token or len(token) > MAX_TOKEN:
        raise InvalidTokenError("missing or oversized token")
    return UnsubscribeSigner(settings_of(request).require_secret_key()).verify(token)


@get(
    "/v1/digest/unsubscribe",
    operation_id="digest_unsubscribe_page",
    tags=["digests"],
    summary="The unsubscribe link: a confirmation page (link scanners must not unsubscribe)",
    media_type=MediaType.HTML,
    responses=_PAGE_ANSWERS,
)
async def confirm_unsubscribe(
    request: Request[Any, Any, Any], token: UnsubscribeToken = None
) -> Response[str]:
    try:
        who = _verified(request, token)
    except InvalidTokenError:
        return _invalid_link()
    return _page(unsubscribe_page.confirmation(who.email, token or ""))


@post(
    "/v1/digest/unsubscribe",
    operation_id="digest_unsubscribe",
    tags=["digests"],
    summary="One-click unsubscribe (RFC 8058: mail clients POST List-Unsubscribe=One-Click)",
    media_type=MediaType.HTML,
    status_code=200,
    responses=_PAGE_ANSWERS,
)
async def unsubscribe(
    request: Request[Any, Any, Any], token: UnsubscribeToken = None
) -> Response[str]:
    try:
        who = _verified(request, token)
    except InvalidTokenError:
        return _invalid_link()

    def switch_off() -> int:
        with project_transaction(digest_engine(request), who.project_id) as conn:
            return unsubscribe_page.switch_off(conn, who.project_id, who.email)

    changed = await in_thread(switch_off)
    log.info("[DIGEST] unsubscribe project=%s changed=%s", who.project_id, changed)
    # The same answer whether or not anything changed: a token reveals no membership.
    return _page(unsubscribe_page.done(who.email))


ROUTES: list[Any] = [confirm_unsubscribe, unsubscribe]
