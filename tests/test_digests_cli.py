"""`lytics digests` as an operator uses it, and a run killed half-way then run again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from lytics.projects import create_project
from lytics.settings import Settings
from tests.support import TEST_SECRET
from tests.support.cli import invoke
from tests.support.digests import WEEK, add_members, create_marts, deliveries, seed_two_weeks
from tests.support.fake_resend import API_KEY, fake_resend

BIN = Path(sys.executable).parent


@pytest.fixture
def env(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, str]:
    assert settings.database_url is not None
    values = {
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "LYTICS_SECRET_KEY": TEST_SECRET,
        "LYTICS_DATA_DIR": str(tmp_path / "data"),
        "RESEND_API_KEY": API_KEY,
        "LYTICS_DIGEST_COOLDOWN_SECONDS": "0",
        "RESEND_RATE_PER_SECOND": "50",
        "LYTICS_PUBLIC_URL": "http://lytics.test",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    create_marts(engine)
    with engine.begin() as conn:
        project_id = create_project(conn, "acme", name="Acme").id
    seed_two_weeks(engine, project_id)
    return values


def test_recipients_suppressions_and_preview(
    env: dict[str, str],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    def lytics(*args: str) -> str:
        result = invoke(monkeypatch, capsys, "digests", *args)
        assert result.code == 0, result.err
        return result.out

    lytics("recipients", "add", "acme", "Ann@Example.com", "--name", "Ann")
    lytics("recipients", "add", "acme", "bo@example.com", "--no-digest")
    listed = lytics("recipients", "list", "acme")
    assert "ann@example.com" in listed.lower()
    assert "digest on" in listed
    assert "bo@example.com" in listed
    assert "digest off" in listed

    lytics("suppressions", "add", "ann@example.com", "--reason", "manual")
    assert "suppressed (manual)" in lytics("recipients", "list", "acme")
    assert "ann@example.com" in lytics("suppressions", "list")
    lytics("suppressions", "remove", "ann@example.com")
    assert "suppressed" not in lytics("recipients", "list", "acme")
    assert invoke(monkeypatch, capsys, "digests", "suppressions", "remove", "x@y.z").code == 1

    out = tmp_path / "digest.html"
    lytics("preview", "acme", "ann@example.com", "--week", WEEK.isoformat(), "-o", str(out))
    assert "Acme: your week in numbers" in out.read_text()
    text = lytics("preview", "acme", "ann@example.com", "--week", WEEK.isoformat(), "--text")
    assert "Sessions: 123" in text

    lytics("recipients", "remove", "acme", "bo@example.com")
    assert "bo@example.com" not in lytics("recipients", "list", "acme")


def test_run_sends_and_reports_each_recipient(
    env: dict[str, str],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_members(engine, 1, ["a@example.com", "b@example.com"])
    with fake_resend() as fake:
        monkeypatch.setenv("RESEND_API_URL", fake.base_url)
        result = invoke(monkeypatch, capsys, "digests", "run", "--week", WEEK.isoformat())
        assert result.code == 0, result.err
        assert "a@example.com" in result.out
        assert "sent 2" in result.out
        assert fake.per_recipient() == {"a@example.com": 1, "b@example.com": 1}

        # The week still running is refused before anything is claimed or sent.
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        refused = invoke(monkeypatch, capsys, "digests", "run", "--week", tomorrow)
        assert refused.code == 1
        assert "has not ended yet" in refused.err
        assert fake.per_recipient() == {"a@example.com": 1, "b@example.com": 1}


@pytest.mark.slow
def test_a_run_killed_half_way_and_run_again_mails_everyone_exactly_once(
    env: dict[str, str], engine: Engine
) -> None:
    emails = [f"r{i:02d}@example.com" for i in range(40)]
    add_members(engine, 1, emails)
    command = [str(BIN / "lytics"), "digests", "run", "--week", WEEK.isoformat()]
    # One email per request and a slow server: the kill lands between requests, or
    # while Resend is processing one (accepted, but the answer is never read).
    with fake_resend(processing_delay_s=0.05) as fake:
        child_env = os.environ | env | {"RESEND_API_URL": fake.base_url, "RESEND_BATCH_SIZE": "1"}
        child = subprocess.Popen(
            command, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while len(fake.emails) < 15 and time.monotonic() < deadline:
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        killed_at = len(fake.emails)
        assert 15 <= killed_at < len(emails)
        assert "claimed" in deliveries(engine).values() or "pending" in deliveries(engine).values()

        again = subprocess.run(
            command, check=False, env=child_env, capture_output=True, text=True, timeout=120
        )
        assert again.returncode == 0, again.stderr
    assert fake.per_recipient() == dict.fromkeys(emails, 1)
    assert set(deliveries(engine).values()) == {"sent"}
