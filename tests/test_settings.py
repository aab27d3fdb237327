"""Settings come from the environment (and .env); missing required ones are named."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from lytics.settings import MissingSettingError, Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("DATABASE_URL", "LYTICS_API_PORT", "GITHUB_API_URL", "LYTICS_ENV"):
        monkeypatch.delenv(name, raising=False)
    s = Settings()
    assert s.database_url is None
    assert (s.api_port, s.dagster_port) == (8000, 3000)
    assert s.github_api_url == "https://api.github.com"
    assert s.resend_api_url == "https://api.resend.com"
    assert s.data_path == (tmp_path / ".lytics").resolve()
    assert s.graphql_url == "http://127.0.0.1:3000/graphql"


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LYTICS_API_PORT=9100\nGITHUB_API_URL=http://gh.local\n")
    monkeypatch.setenv("RESEND_API_URL", "http://resend.local")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_x")
    s = Settings()
    assert s.api_port == 9100
    assert s.github_api_url == "http://gh.local"
    assert s.resend_api_url == "http://resend.local"
    # Secrets never show in reprs (and so never in logs).
    assert "ghp_x" not in repr(s)
    assert s.github_token is not None
    assert s.github_token.get_secret_value() == "ghp_x"


def test_invalid_value_is_rejected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LYTICS_API_PORT", "not-a-port")
    with pytest.raises(ValueError, match=r"api_port|LYTICS_API_PORT"):
        Settings()


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://db/x"}, "LYTICS_SECRET_KEY"),
    ],
)
def test_production_names_the_missing_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], missing: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LYTICS_ENV", "production")
    for name in ("DATABASE_URL", "LYTICS_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(MissingSettingError, match=missing):
        Settings()


def test_require_helpers_name_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LYTICS_SECRET_KEY", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    # Outside development nothing is generated: the key must be given.
    monkeypatch.setenv("LYTICS_ENV", "test")
    s = Settings()
    with pytest.raises(MissingSettingError, match="LYTICS_SECRET_KEY is not set"):
        s.require_secret_key()
    with pytest.raises(MissingSettingError, match="DATABASE_URL is not set"):
        s.require_database_url()


# --- metrics and alerts -------------------------------------------------------------------
NEW_SETTINGS = (
    "LYTICS_PARTITIONS_START",
    "LYTICS_DBT_THREADS",
    "LYTICS_ALERT_WEBHOOK_URL",
    "LYTICS_ALERT_EMAIL",
    "MAIL_FROM",
    "MAIL_FROM_NAME",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in NEW_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_metrics_and_alert_defaults(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setattr(os, "cpu_count", lambda: 6)
    s = Settings()
    assert s.partitions_start == date(2025, 1, 1)
    assert s.dbt_threads is None
    assert s.dbt_thread_count == 6  # one per core
    assert (s.alert_webhook_url, s.alert_email) == (None, None)
    assert s.mail_from == "digest@lytics.localhost"
    assert s.mail_sender == "Lytics <digest@lytics.localhost>"


def test_dbt_threads_fall_back_to_two_when_cores_are_unknown(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setattr(os, "cpu_count", lambda: None)
    assert Settings().dbt_thread_count == 2


def test_metrics_and_alert_settings_are_parsed(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("LYTICS_PARTITIONS_START", "2024-03-15")
    clean_env.setenv("LYTICS_DBT_THREADS", "12")
    clean_env.setenv("LYTICS_ALERT_WEBHOOK_URL", "https://hooks.example/T0/B0")
    Path(".env").write_text("LYTICS_ALERT_EMAIL=ops@example.com\nMAIL_FROM_NAME=\n")
    s = Settings()
    assert s.partitions_start == date(2024, 3, 15)
    assert (s.dbt_threads, s.dbt_thread_count) == (12, 12)
    assert s.alert_webhook_url == "https://hooks.example/T0/B0"
    assert s.alert_email == "ops@example.com"
    assert s.mail_sender == "digest@lytics.localhost"  # no display name


@pytest.mark.parametrize("name", ["LYTICS_DBT_THREADS", "LYTICS_ALERT_WEBHOOK_URL", "GITHUB_TOKEN"])
def test_a_blank_optional_setting_is_unset(clean_env: pytest.MonkeyPatch, name: str) -> None:
    clean_env.setenv(name, "  ")
    s = Settings()
    assert (s.dbt_threads, s.alert_webhook_url, s.github_token) == (None, None, None)


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("LYTICS_DBT_THREADS", "0", "greater than or equal to 1"),
        ("LYTICS_DBT_THREADS", "65", "less than or equal to 64"),
        ("LYTICS_DBT_THREADS", "many", "valid integer"),
        ("LYTICS_PARTITIONS_START", "2025-13-01", "valid date"),
        ("LYTICS_PARTITIONS_START", "yesterday", "valid date"),
        ("LYTICS_ALERT_WEBHOOK_URL", "hooks.example/x", "http:// or https:// URL"),
        ("LYTICS_ALERT_EMAIL", "ops", "email address"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_problem(
    clean_env: pytest.MonkeyPatch, name: str, value: str, why: str
) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    message = str(raised.value)
    assert f"\n{name}\n" in message  # the variable operators set, not the Python field
    assert why in message
    assert value in message


def test_development_uses_the_generated_secret_key_unless_one_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LYTICS_SECRET_KEY", raising=False)
    monkeypatch.delenv("LYTICS_ENV", raising=False)
    monkeypatch.setenv("LYTICS_DATA_DIR", str(tmp_path / "data"))
    generated = Settings().require_secret_key()
    path = tmp_path / "data" / "secret_key"
    assert path.read_text().strip() == generated
    assert path.stat().st_mode & 0o777 == 0o600
    assert Settings().require_secret_key() == generated  # made once, then reused
    monkeypatch.setenv("LYTICS_SECRET_KEY", "explicit")
    assert Settings().require_secret_key() == "explicit"
