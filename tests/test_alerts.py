"""Alerts reach a webhook and an email API over real HTTP; a failing channel never raises."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import pytest
from litestar import Litestar, Request, post
from litestar.response import Response

from lytics.alerts import Alert, AlertTargets, send_alert
from lytics_assets.alerts import run_failure_alert
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
        ),
    )
    assert outcome["webhook"] == "failed: HTTP 500"
    assert outcome["email"].startswith("failed: ")


def test_run_failure_sensor_alerts_through_the_configured_webhook(
    inbox: tuple[str, Inbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, box = inbox
    monkeypatch.setenv("LYTICS_ALERT_WEBHOOK_URL", f"{base}/hook")

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
            e
            for e in instance.all_logs(result.run_id)
            if e.dagster_event is not None
            and e.dagster_event.event_type_value == "PIPELINE_FAILURE"
        )
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert",
            dagster_instance=instance,
            dagster_run=run,
            dagster_event=failure.dagster_event,
        ).for_run_failure()
        run_failure_alert(context)
    ((path, _, body),) = box.received
    assert path == "/hook"
    assert body["alert"]["title"] == "Dagster run failed: doomed"
    assert body["alert"]["context"]["run_id"] == result.run_id
