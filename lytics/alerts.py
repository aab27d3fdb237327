"""Operational alerts: always a structured log line; optionally a webhook and an email.

No Dagster here: the pipeline's run-failure sensor calls `send_alert`, and any
other job can too. Delivery failures are logged, never raised: an alert that
cannot be delivered must not hide the failure it reports.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from lytics.settings import Settings

log = logging.getLogger("lytics.alerts")
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Alert:
    title: str
    detail: str
    severity: str = "error"
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AlertTargets:
    """Where alerts go. Build it with `from_settings`: the defaults live in Settings."""

    webhook_url: str | None = None
    email_to: str | None = None
    resend_api_url: str
    resend_api_key: str | None = None
    mail_from: str

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertTargets:
        """LYTICS_ALERT_WEBHOOK_URL, LYTICS_ALERT_EMAIL; email through RESEND_* from MAIL_FROM."""
        key = settings.resend_api_key
        return cls(
            webhook_url=settings.alert_webhook_url,
            email_to=settings.alert_email,
            resend_api_url=settings.resend_api_url,
            resend_api_key=key.get_secret_value() if key is not None else None,
            mail_from=settings.mail_sender,
        )


def send_alert(alert: Alert, targets: AlertTargets) -> dict[str, str]:
    """Deliver the alert everywhere configured; returns the outcome per channel."""
    log.error(alert.title, extra={"alert": asdict(alert)})
    outcomes = {"log": "sent"}
    if targets.webhook_url:
        outcomes["webhook"] = _post(targets.webhook_url, {"alert": asdict(alert)}, {})
    if targets.email_to and targets.resend_api_key:
        body = {
            "from": targets.mail_from,
            "to": [targets.email_to],
            "subject": f"[Lytics] {alert.title}",
            "text": f"{alert.detail}\n\n"
            + "\n".join(f"{k}: {v}" for k, v in alert.context.items()),
        }
        headers = {"Authorization": f"Bearer {targets.resend_api_key}"}
        outcomes["email"] = _post(f"{targets.resend_api_url.rstrip('/')}/emails", body, headers)
    return outcomes


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> str:
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        log.warning("alert delivery to %s failed: %s", url.split("?", 1)[0], type(exc).__name__)
        return f"failed: {type(exc).__name__}"
    if response.status_code >= 300:
        log.warning("alert delivery answered %s", response.status_code)
        return f"failed: HTTP {response.status_code}"
    return "sent"
