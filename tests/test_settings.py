"""Settings come from the environment (and .env); missing required ones are named."""

from __future__ import annotations

from pathlib import Path

import pytest

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
    s = Settings()
    with pytest.raises(MissingSettingError, match="LYTICS_SECRET_KEY is not set"):
        s.require_secret_key()
    with pytest.raises(MissingSettingError, match="DATABASE_URL is not set"):
        s.require_database_url()
