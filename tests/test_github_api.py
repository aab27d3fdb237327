"""The GitHub read API and the `lytics github` command, over real HTTP and real Postgres.

What must hold: private repositories never appear in the read API unless the
project opted in (and appear once it does); a key sees only its own project;
unauthenticated and malformed requests are refused; the CLI stores the token
encrypted, never prints it, and `remove` takes the source's data with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from lytics.settings import Settings
from lytics_ingest_api.app import create_app
from tests.support import TEST_SECRET
from tests.support.cli import invoke
from tests.support.fake_github import TOKEN
from tests.support.github import Served, connect_source, sync_once
from tests.support.http import HTTP_TIMEOUT_S, serve
from tests.support.ingest import new_project


@pytest.fixture
def api(settings: Settings) -> Iterator[str]:
    with serve(create_app(settings)) as base:
        yield base


def _get(base: str, path: str, key: str | None, **params: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(f"{base}{path}", headers=headers, params=params, timeout=HTTP_TIMEOUT_S)  # type: ignore[arg-type]


def _synced_project(engine: Engine, github: Served) -> tuple[int, str]:
    project_id, _, secret = new_project(engine, "site")
    source = connect_source(engine, github.api_url, project_id=project_id)
    assert sync_once(engine, source).complete
    return project_id, secret


def test_repos_are_public_only_with_their_latest_counts(
    github: Served, engine: Engine, api: str
) -> None:
    _, secret = _synced_project(engine, github)

    response = _get(api, "/v1/github/repos", secret)

    assert response.status_code == 200
    body = response.json()
    assert body["project"] == "site"
    assert body["total"] == 2
    assert [(r["full_name"], r["stars"], r["forks"], r["watchers"]) for r in body["repos"]] == [
        ("octo/alpha", 12, 3, 4),
        ("octo/beta", 3, 0, 1),
    ]
    assert all(r["visibility"] == "public" for r in body["repos"])
    assert "secret" not in response.text
    by_name = _get(api, "/v1/github/repos", secret, sort="name", limit=1, offset=1).json()
    assert [r["full_name"] for r in by_name["repos"]] == ["octo/beta"]


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The environment a `lytics` command run by the operator would have."""
    _use(settings, monkeypatch)
    return monkeypatch


def test_private_repos_appear_only_after_the_project_opts_in(
    github: Served,
    engine: Engine,
    api: str,
    cli_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, secret = _synced_project(engine, github)
    monkeypatch = cli_env

    opted_in = invoke(monkeypatch, capsys, "github", "connect", "site", "octo", "--expose-private")
    assert opted_in.code == 0, opted_in.err
    names = [r["full_name"] for r in _get(api, "/v1/github/repos", secret).json()["repos"]]
    assert names == ["octo/alpha", "octo/beta", "octo/secret"]

    opted_out = invoke(
        monkeypatch, capsys, "github", "connect", "site", "octo", "--no-expose-private"
    )
    assert opted_out.code == 0, opted_out.err
    names = [r["full_name"] for r in _get(api, "/v1/github/repos", secret).json()["repos"]]
    assert names == ["octo/alpha", "octo/beta"]


def test_user_is_the_connected_account(github: Served, engine: Engine, api: str) -> None:
    _, secret = _synced_project(engine, github)

    body = _get(api, "/v1/github/user", secret).json()

    assert body["user"]["login"] == "octo"
    assert body["user"]["followers"] == 42
    assert [a["login"] for a in body["accounts"]] == ["octo"]


def test_a_key_sees_only_its_own_project(github: Served, engine: Engine, api: str) -> None:
    _synced_project(engine, github)
    _, _, other_secret = new_project(engine, "other")

    repos = _get(api, "/v1/github/repos", other_secret).json()
    user = _get(api, "/v1/github/user", other_secret).json()

    assert repos["repos"] == []
    assert repos["total"] == 0
    assert user == {"project": "other", "user": None, "accounts": []}


@pytest.mark.parametrize("path", ["/v1/github/repos", "/v1/github/user"])
def test_unauthenticated_requests_are_refused(engine: Engine, api: str, path: str) -> None:
    _, write_key, _ = new_project(engine, "site")
    assert _get(api, path, None).status_code == 401
    assert _get(api, path, "sk_not_a_key").status_code == 401
    # A public write key is not a secret key.
    assert _get(api, path, write_key).status_code == 401


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"sort": "stars; drop"}]
)
def test_malformed_queries_are_refused(engine: Engine, api: str, params: dict[str, object]) -> None:
    _, _, secret = new_project(engine, "site")
    response = _get(api, "/v1/github/repos", secret, **params)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid"


# --- the CLI --------------------------------------------------------------------------------


def _use(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.database_url is not None
    monkeypatch.setenv("DATABASE_URL", settings.database_url.get_secret_value())
    monkeypatch.setenv("LYTICS_SECRET_KEY", TEST_SECRET)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)


def test_cli_connect_list_unfollow_remove(
    github: Served,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use(settings, monkeypatch)
    new_project(engine, "site")
    connect = invoke(
        monkeypatch,
        capsys,
        "github",
        "connect",
        "site",
        "octo",
        "--token",
        "-",
        "--follow",
        "octo/*",
        "--follow",
        "other/repo",
        "--api-url",
        github.api_url,
        "--verify",
        stdin=TOKEN + "\n",
    )
    assert connect.code == 0, connect.err
    assert "authenticated as octo" in connect.out
    assert TOKEN not in connect.out + connect.err
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT access_token_encrypted, kind FROM app.data_sources")
        ).one()
    assert stored.kind == "github"
    assert TOKEN.encode() not in bytes(stored.access_token_encrypted)

    listed = invoke(monkeypatch, capsys, "github", "list", "--json")
    assert listed.code == 0, listed.err
    [entry] = json.loads(listed.out)
    assert entry["follow"] == ["octo/*", "other/repo"]
    assert entry["api_url"] == github.api_url
    assert entry["expose_private"] is False
    assert TOKEN not in listed.out

    synced = invoke(monkeypatch, capsys, "github", "sync", "--project", "site")
    assert synced.code == 0, synced.err
    report = json.loads(synced.out.strip().splitlines()[-1])
    assert report["complete"] is True
    assert report["not_found"] == ["other/repo"]
    assert report["requests"] > 10

    unfollowed = invoke(monkeypatch, capsys, "github", "unfollow", "site", "octo", "other/repo")
    assert unfollowed.code == 0, unfollowed.err
    assert "now follows: octo/*" in unfollowed.out

    removed = invoke(monkeypatch, capsys, "github", "remove", "site", "octo")
    assert removed.code == 0, removed.err
    with engine.connect() as conn:
        left = [
            conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in (
                "app.data_sources",
                "github.repositories",
                "github.stargazers",
                "github.sync_cursors",
                "github.http_cache",
            )
        ]
    assert left == [0, 0, 0, 0, 0]


def test_cli_refuses_bad_input_with_a_clear_message(
    github: Served,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _use(settings, monkeypatch)
    new_project(engine, "site")
    cases = [
        (
            ("connect", "site", "octo", "--token", "t", "--follow", "not a repo"),
            "invalid repository",
        ),
        (("connect", "site", "octo", "--follow", "octo/*"), "needs a token"),
        (("connect", "nope", "octo", "--token", "t"), "no project"),
        (("remove", "site", "nobody"), "no GitHub account"),
        (
            ("connect", "site", "octo", "--token", "bad", "--api-url", github.api_url, "--verify"),
            "401",
        ),
    ]
    for args, message in cases:
        result = invoke(monkeypatch, capsys, "github", *args)
        assert result.code == 1, (args, result.out)
        assert message in result.err, (args, result.err)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM app.data_sources")).scalar_one() == 0


def test_database_down_means_503(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"postgresql://postgres@/postgres?host={tmp_path}",  # no server there
        secret_key="k",
        environment="test",
    )
    with serve(create_app(settings)) as base:
        answers = [
            _get(base, path, "lys_some-key") for path in ("/v1/github/repos", "/v1/github/user")
        ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"
