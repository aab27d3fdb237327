"""Alerts reach a webhook and an email API over real HTTP; a failing channel never raises.

Where they go comes from Settings (LYTICS_ALERT_*, RESEND_*, MAIL_FROM*).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from litestar import Litestar, Request, post
from litestar.response import Response

from lytics.alerts import Alert, AlertTargets, send_alert
from lytics.settings import Settings
from lytics_assets.alerts import alert_targets, run_failure_alert
from tests.support.http import serve


@dataclass
class Inbox:
    received: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def inbox() -> Iterator[tuple[str, Inbox]]:
    box = Inbox()

    @post(["/hook", "/emails"], status_code=200)
    async def receive(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
        box.received.append(
            (request.url.path, dict(request.headers), json.loads(await request.body()))
        )
        return Response({"id": "x"}, status_code=box.status)

    with serve(Litestar([receive])) as base:
        yield base, box


def test_alert_goes_to_log_webhook_and_email(
    inbox: tuple[str, Inbox], caplog: pytest.LogCaptureFixture
) -> None:
    base, box = inbox
    targets = AlertTargets(
        webhook_url=f"{base}/hook",
        email_to="ops@example.com",
        resend_api_url=base,
        resend_api_key="re_test",
        mail_from="Lytics <alerts@example.com>",
    )
    with caplog.at_level(logging.ERROR, logger="lytics.alerts"):
        outcome = send_alert(Alert("run failed", "boom", context={"run_id": "r1"}), targets)
    assert outcome == {"log": "sent", "webhook": "sent", "email": "sent"}
    assert [r.getMessage() for r in caplog.records] == ["run failed"]
    hook, email = box.received
    assert hook[0] == "/hook"
    assert hook[2]["alert"]["context"] == {"run_id": "r1"}
    assert email[0] == "/emails"
    assert email[1]["authorization"] == "Bearer re_test"
    assert email[2]["to"] == ["ops@example.com"]
    assert email[2]["from"] == "Lytics <alerts@example.com>"
    assert "boom" in email[2]["text"]


def test_unreachable_or_failing_channels_are_reported_not_raised(inbox: tuple[str, Inbox]) -> None:
    base, box = inbox
    box.status = 500
    outcome = send_alert(
        Alert("x", "y"),
        AlertTargets(
            webhook_url=f"{base}/hook",
            email_to="a@b.c",
            resend_api_url="http://127.0.0.1:9",
            resend_api_key="k",
            mail_from="alerts@example.com",
        ),
    )
    assert outcome["webhook"] == "failed: HTTP 500"
    assert outcome["email"].startswith("failed: ")


ALERT_ENV = (
    "LYTICS_ALERT_WEBHOOK_URL",
    "LYTICS_ALERT_EMAIL",
    "RESEND_API_URL",
    "RESEND_API_KEY",
    "MAIL_FROM",
    "MAIL_FROM_NAME",
)


@pytest.fixture
def alert_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No alert setting from the host's environment or a stray .env."""
    monkeypatch.chdir(tmp_path)
    for name in ALERT_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_targets_come_from_settings(alert_env: pytest.MonkeyPatch) -> None:
    settings = Settings(
        alert_webhook_url="https://hooks.example/x",
        alert_email="ops@example.com",
        resend_api_url="http://resend.local",
        resend_api_key="re_k",
        mail_from="alerts@example.com",
        mail_from_name="Lytics",
    )
    assert AlertTargets.from_settings(settings) == AlertTargets(
        webhook_url="https://hooks.example/x",
        email_to="ops@example.com",
        resend_api_url="http://resend.local",
        resend_api_key="re_k",
        mail_from="Lytics <alerts@example.com>",
    )


def test_unset_alert_settings_mean_log_only(alert_env: pytest.MonkeyPatch) -> None:
    alert_env.setenv("LYTICS_ALERT_WEBHOOK_URL", "")  # blank is unset, as before
    targets = alert_targets()
    assert (targets.webhook_url, targets.email_to, targets.resend_api_key) == (None, None, None)
    # One sender default for every email: Settings' (the digests' too).
    assert targets.mail_from == Settings().mail_sender == "Lytics <digest@lytics.localhost>"
    assert targets.resend_api_url == "https://api.resend.com"
    assert send_alert(Alert("x", "y"), targets) == {"log": "sent"}


def _fail_a_run_and_alert() -> str:
    """Run a job that fails, then the run-failure sensor on it; returns the run id."""

    @dg.op
    def explode() -> None:
        raise RuntimeError("disk on fire")

    @dg.job
    def doomed() -> None:
        explode()

    with dg.DagsterInstance.ephemeral() as instance:
        result = doomed.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        failure = next(
            e.dagster_event
            for e in instance.all_logs(result.run_id)
            if e.dagster_event is not None
            and e.dagster_event.event_type_value == "PIPELINE_FAILURE"
        )
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert",
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=failure,
        ).for_run_failure()
        run_failure_alert(context)
    return result.run_id


def test_run_failure_sensor_alerts_through_the_configured_webhook(
    inbox: tuple[str, Inbox], alert_env: pytest.MonkeyPatch
) -> None:
    base, box = inbox
    alert_env.setenv("LYTICS_ALERT_WEBHOOK_URL", f"{base}/hook")
    run_id = _fail_a_run_and_alert()
    ((path, _, body),) = box.received
    assert path == "/hook"
    assert body["alert"]["title"] == "Dagster run failed: doomed"
    assert body["alert"]["context"]["run_id"] == run_id


def test_run_failure_sensor_emails_through_resend_with_the_settings(
    inbox: tuple[str, Inbox], alert_env: pytest.MonkeyPatch
) -> None:
    base, box = inbox
    alert_env.setenv("LYTICS_ALERT_EMAIL", "ops@example.com")
    alert_env.setenv("RESEND_API_URL", base)
    alert_env.setenv("RESEND_API_KEY", "re_alerts")
    alert_env.setenv("MAIL_FROM", "robot@example.com")
    Path(".env").write_text("MAIL_FROM_NAME=Ops bot\n")  # a .env counts as much
    run_id = _fail_a_run_and_alert()
    ((path, headers, body),) = box.received
    assert path == "/emails"
    assert headers["authorization"] == "Bearer re_alerts"
    assert body["from"] == "Ops bot <robot@example.com>"
    assert body["to"] == ["ops@example.com"]
    assert body["subject"] == "[Lytics] Dagster run failed: doomed"
    assert f"run_id: {run_id}" in body["text"]
