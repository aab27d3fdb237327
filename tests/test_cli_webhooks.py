"""`lytics webhooks` as a user runs it: add, list, remove signing secrets.

What must hold: a generated secret is printed once and works for the ingest
API's decryption; `list` shows prefixes only, never a whole secret; removing
by prefix deactivates exactly that secret; mistakes are one clear line and a
non-zero exit code.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from lytics.crypto import Cipher
from lytics.projects import create_project, get_project
from lytics.webhook_secrets import CIPHER_PURPOSE, add_secret, load_secrets
from tests.support import TEST_SECRET
from tests.support.cli import CliResult, invoke
from tests.support.wait import DEFAULT_TIMEOUT_S, wait_until

Run = Callable[..., CliResult]


@pytest.fixture
def lytics(
    database_url: str,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Run:
    """Run `lytics ARGS` in-process through the real entry point, with project `shop`."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LYTICS_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("LYTICS_DATA_DIR", str(tmp_path / "data"))
    with engine.begin() as conn:
        create_project(conn, "shop")

    def run(*args: str, stdin: str = "") -> CliResult:
        return invoke(monkeypatch, capsys, *args, stdin=stdin)

    return run


def stored(engine: Engine, source: str, key: str = TEST_SECRET) -> list[str]:
    with engine.connect() as conn:
        project_id = get_project(conn, "shop").id
        return load_secrets(conn, Cipher(key, CIPHER_PURPOSE), project_id, source)


def test_add_generates_prints_once_and_list_never_shows_it(lytics: Run, engine: Engine) -> None:
    added = lytics("webhooks", "add-secret", "shop", "resend")
    assert added.code == 0, added.err
    secret = next(line for line in added.out.splitlines() if line.startswith("whsec_"))
    assert "(1 active)" in added.out
    assert "only time" in added.out
    assert "/v1/webhooks/resend?project=shop" in added.out
    # What the ingest API decrypts with LYTICS_SECRET_KEY is exactly what was printed.
    assert stored(engine, "resend") == [secret]

    listed = lytics("webhooks", "list")
    assert listed.code == 0
    assert "shop" in listed.out
    assert "resend" in listed.out
    assert secret not in listed.out
    assert secret[:12] in listed.out  # whsec_ + 6 visible characters
    assert secret[:13] not in listed.out
    as_json = json.loads(lytics("webhooks", "list", "--json").out)
    assert as_json == [
        {
            "project": "shop",
            "source": "resend",
            "secrets": [secret[:12]],
            "updated_at": as_json[0]["updated_at"],
        }
    ]


def test_given_secret_is_stored_but_not_echoed(lytics: Run, engine: Engine) -> None:
    given = "github-hook-secret-0123456789abcdef"
    added = lytics("webhooks", "add-secret", "shop", "github", "--secret", given)
    assert added.code == 0, added.err
    assert given not in added.out
    from_stdin = "second-github-secret-from-stdin-xyz"
    piped = lytics("webhooks", "add-secret", "shop", "github", "--secret", "-", stdin=from_stdin)
    assert piped.code == 0, piped.err
    assert from_stdin not in piped.out
    assert "(2 active)" in piped.out
    assert stored(engine, "github") == [given, from_stdin]
    listed = lytics("webhooks", "list", "--project", "shop").out
    assert given not in listed
    assert from_stdin not in listed


def test_rotation_add_second_then_remove_first_by_prefix(lytics: Run, engine: Engine) -> None:
    first = "first-acme-secret-aaaaaaaaaaaa"
    second = "second-acme-secret-bbbbbbbbbbb"
    assert lytics("webhooks", "add-secret", "shop", "acme", "--secret", first).code == 0
    assert lytics("webhooks", "add-secret", "shop", "acme", "--secret", second).code == 0
    # Adding the same secret again changes nothing.
    again = lytics("webhooks", "add-secret", "shop", "acme", "--secret", first)
    assert "(2 active)" in again.out
    removed = lytics("webhooks", "remove-secret", "shop", "acme", "firs")
    assert removed.code == 0, removed.err
    assert "(1 active)" in removed.out
    assert stored(engine, "acme") == [second]
    last = lytics("webhooks", "remove-secret", "shop", "acme", "seco")
    assert last.code == 0
    assert "refused" in last.out
    assert stored(engine, "acme") == []
    assert json.loads(lytics("webhooks", "list", "--json").out) == []


def test_mistakes_are_clear_errors(lytics: Run, engine: Engine) -> None:
    unknown_project = lytics("webhooks", "add-secret", "nope", "resend")
    assert (unknown_project.code, "no project 'nope'" in unknown_project.err) == (1, True)
    bad_source = lytics("webhooks", "add-secret", "shop", "Bad Name")
    assert (bad_source.code, "invalid webhook source" in bad_source.err) == (1, True)
    not_svix = lytics("webhooks", "add-secret", "shop", "resend", "--secret", "whsec_***")
    assert (not_svix.code, "Standard Webhooks" in not_svix.err) == (1, True)
    assert stored(engine, "resend") == []
    missing = lytics("webhooks", "remove-secret", "shop", "resend", "whsec_abc")
    assert (missing.code, "no resend secret starting with" in missing.err) == (1, True)
    for secret in ("same-start-one", "same-start-two"):
        lytics("webhooks", "add-secret", "shop", "acme", "--secret", secret)
    ambiguous = lytics("webhooks", "remove-secret", "shop", "acme", "same")
    assert (ambiguous.code, "2 secrets start with" in ambiguous.err) == (1, True)
    assert len(stored(engine, "acme")) == 2


def test_wrong_secret_key_is_a_clear_error_not_a_traceback(
    lytics: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lytics("webhooks", "add-secret", "shop", "acme").code == 0
    monkeypatch.setenv("LYTICS_SECRET_KEY", "a-different-key")
    listed = lytics("webhooks", "list")
    assert listed.code == 1
    assert "cannot be decrypted" in listed.err


def test_dev_users_share_the_data_dir_key_with_the_dev_server(
    lytics: Run, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without LYTICS_SECRET_KEY the CLI uses the key `lytics dev` keeps in the data folder."""
    monkeypatch.delenv("LYTICS_SECRET_KEY")
    assert lytics("webhooks", "add-secret", "shop", "acme", "--secret", "dev-secret-1").code == 0
    dev_key = (tmp_path / "data" / "secret_key").read_text().strip()
    assert dev_key
    assert stored(engine, "acme", key=dev_key) == ["dev-secret-1"]


def test_webhooks_commands_have_help(lytics: Run) -> None:
    for command in (
        ["webhooks"],
        ["webhooks", "add-secret"],
        ["webhooks", "remove-secret"],
        ["webhooks", "list"],
    ):
        result = lytics(*command, "--help")
        assert result.code == 0
        assert "Usage:" in result.out


def test_concurrent_first_adds_keep_both_secrets(lytics: Run, engine: Engine) -> None:
    """Two operators adding the first secrets of a source at once: neither secret is lost."""
    cipher = Cipher(TEST_SECRET, CIPHER_PURPOSE)
    first_added = threading.Event()
    with engine.connect() as conn:
        project_id = get_project(conn, "shop").id

    def second_is_waiting() -> bool:
        with engine.connect() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        return bool(waiting)

    def slow_first() -> None:
        with engine.begin() as conn:
            add_secret(conn, cipher, project_id, "acme", "secret-from-first-operator")
            first_added.set()
            # Still uncommitted until the second operator's add waits on this one's lock.
            wait_until(second_is_waiting, "the second add waiting on the first's lock")

    def second() -> None:
        assert first_added.wait(DEFAULT_TIMEOUT_S)
        with engine.begin() as conn:
            add_secret(conn, cipher, project_id, "acme", "secret-from-second-operator")

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(slow_first), pool.submit(second)]:
            future.result()
    assert stored(engine, "acme") == [
        "secret-from-first-operator",
        "secret-from-second-operator",
    ]
