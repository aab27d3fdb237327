"""The Grafana dashboard and the Prometheus rules in deploy/ are checked, not just shipped.

The rules go through Prometheus's own `promtool` (Debian's `prometheus` package, which
`make test` installs), both `check rules` and the alert unit tests beside them; every
metric a panel or a rule names must be one the ingest API really exposes on /metrics.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from lytics.settings import Settings
from tests.support.ingest import Ingest, served_ingest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RULES = DEPLOY / "prometheus" / "lytics.rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "lytics.rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "lytics-ingest.json"
METRIC_NAME = re.compile(r"\blytics_[a-z0-9_]+\b")


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `make test` installs Debian's prometheus package"
    return found


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in _dashboard()["panels"] for target in panel["targets"]]


def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_alert_fires_on_its_failure_and_stays_quiet_on_health() -> None:
    done = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name],
        check=False,
        capture_output=True,
        text=True,
        cwd=RULE_TESTS.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_unit_test() -> None:
    alerts = set(re.findall(r"^\s*- alert: (\w+)", RULES.read_text(), re.MULTILINE))
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert alerts
    assert alerts <= tested, alerts - tested


def test_dashboard_is_a_grafana_dashboard_with_the_panels_operators_need() -> None:
    dashboard = _dashboard()
    titles = [panel["title"] for panel in dashboard["panels"]]
    for needed in ("Request rate", "Latency", "status", "503", "Webhook", "Writer flushes"):
        assert any(needed in title for title in titles), needed
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        # One data source variable, so the file imports into any Grafana unchanged.
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"]
        assert all(target["expr"] for target in panel["targets"])


@pytest.fixture
def exercised_api(settings: Settings, engine: Engine) -> Iterator[Ingest]:
    """An API that has answered an event, a webhook and a readiness poll."""
    with served_ingest(settings, engine) as api:
        event = {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "m-1"}
        assert api.post("/v1/track", json=event).status_code == 200
        assert api.post("/v1/webhooks/github", content=b"{}").status_code in (400, 401)
        assert api.get("/health/ready").status_code == 200
        yield api


def test_every_metric_a_panel_or_rule_uses_is_exposed(exercised_api: Ingest) -> None:
    exposed = {
        sample.name
        for family in text_string_to_metric_families(exercised_api.get("/metrics").text)
        for sample in family.samples
    }
    used = set(METRIC_NAME.findall(RULES.read_text()))
    for expr in _dashboard_exprs():
        used.update(METRIC_NAME.findall(expr))
    assert used, "no metric names found"
    assert used <= exposed, sorted(used - exposed)
