"""Digest objects built from Settings (one place that knows which setting feeds what)."""

from __future__ import annotations

import time
from collections.abc import Callable

from lytics.addresses import served_addresses
from lytics.digests.outbox import key_prefix
from lytics.digests.resend import Pacer, ResendClient, RetryPolicy
from lytics.digests.sender import SendConfig
from lytics.digests.unsubscribe import UnsubscribeSigner
from lytics.settings import MissingSettingError, Settings


def sender_address(settings: Settings) -> str:
    name = settings.mail_from_name.replace('"', "")
    return f"{name} <{settings.mail_from}>" if name else settings.mail_from


def send_config(settings: Settings) -> SendConfig:
    secret = settings.require_secret_key()
    return SendConfig(
        sender=sender_address(settings),
        public_url=served_addresses(settings).public_url,
        signer=UnsubscribeSigner(secret),
        key_prefix=key_prefix(secret),
        batch_size=settings.resend_batch_size,
    )


def resend_client(
    settings: Settings, *, sleep: Callable[[float], None] = time.sleep
) -> ResendClient:
    if settings.resend_api_key is None:
        raise MissingSettingError("RESEND_API_KEY", "digests are sent through Resend")
    return ResendClient(
        settings.resend_api_url,
        settings.resend_api_key.get_secret_value(),
        pacer=Pacer(settings.resend_rate_per_second, sleep=sleep),
        retry=RetryPolicy(
            max_retries=settings.resend_max_retries, backoff_s=settings.resend_backoff_seconds
        ),
        timeout_s=settings.resend_timeout_seconds,
        sleep=sleep,
    )


def missing_for_sending(settings: Settings) -> str | None:
    """Why a digest run would fail at once for want of a setting; None when it can send.

    Asks the very constructors a run uses, so the answer cannot drift from the run.
    """
    try:
        send_config(settings)
        resend_client(settings).close()
    except MissingSettingError as exc:
        return str(exc)
    return None
