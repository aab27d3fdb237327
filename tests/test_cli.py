"""The `lytics` command as a user runs it: output, exit codes, help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lytics.cli import main
from tests.support.cli import CliResult, invoke


@pytest.fixture
def lytics(database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `lytics ARGS` in-process through the real entry point against the test database."""
    monkeypatch.setenv("DATABASE_URL", database_url)

    def run(*args: str) -> CliResult:
        return invoke(monkeypatch, capsys, *args)

    return run


def test_projects_create_prints_keys_once_and_list_shows_project(lytics) -> None:  # type: ignore[no-untyped-def]
    created = lytics("projects", "create", "shop", "--name", "Shop")
    assert created.code == 0, created.err
    assert "lyw_" in created.out
    assert "lys_" in created.out
    listed = lytics("projects", "list", "--json")
    assert [p["slug"] for p in json.loads(listed.out)] == ["shop"]
    keys = lytics("keys", "list", "--project", "shop")
    assert "lyw_" in keys.out
    # The list shows prefixes, never the whole secret.
    secret_line = next(line for line in created.out.splitlines() if "lys_" in line)
    assert secret_line.split()[-1] not in keys.out


def test_duplicate_project_and_bad_slug_are_clear_errors(lytics) -> None:  # type: ignore[no-untyped-def]
    assert lytics("projects", "create", "shop").code == 0
    dup = lytics("projects", "create", "shop")
    assert dup.code == 1
    assert "already exists" in dup.err
    bad = lytics("projects", "create", "Bad Slug")
    assert bad.code == 1
    assert "invalid project slug" in bad.err


def test_key_lifecycle(lytics) -> None:  # type: ignore[no-untyped-def]
    lytics("projects", "create", "shop", "--no-keys")
    created = lytics("keys", "create", "shop", "--kind", "secret", "--name", "backend")
    assert created.code == 0
    key_id = int(created.out.split()[1])
    rotated = lytics("keys", "rotate", str(key_id), "--grace-hours", "2")
    assert rotated.code == 0
    assert "stops working in 2 h" in rotated.out
    keys = json.loads(lytics("keys", "list", "--json").out)
    assert [(k["id"], k["active"], k["expires_at"] is not None) for k in keys] == [
        (key_id, True, True),
        (key_id + 1, True, False),
    ]
    revoked = lytics("keys", "revoke", str(key_id + 1))
    assert revoked.code == 0
    assert "revoked key" in revoked.out
    assert not json.loads(lytics("keys", "list", "--json").out)[1]["active"]


def test_unknown_key_and_project_exit_non_zero(lytics) -> None:  # type: ignore[no-untyped-def]
    missing_key = lytics("keys", "revoke", "4242")
    assert (missing_key.code, "no key with id 4242" in missing_key.err) == (1, True)
    missing_project = lytics("keys", "create", "nope", "--kind", "write")
    assert (missing_project.code, "no project 'nope'" in missing_project.err) == (1, True)
    usage = lytics("keys", "create", "nope", "--kind", "admin")
    assert usage.code == 2


def test_db_current_reports_up_to_date(lytics) -> None:  # type: ignore[no-untyped-def]
    result = lytics("db", "current")
    assert result.code == 0
    assert "up to date" in result.out


def test_an_unknown_revision_is_a_clear_error_and_changes_nothing(lytics) -> None:  # type: ignore[no-untyped-def]
    for command in ("upgrade", "downgrade"):
        result = lytics("db", command, "garbage")
        assert result.code == 1, result.err
        assert "error: Can't locate revision identified by 'garbage'" in result.err
    assert "up to date" in lytics("db", "current").out


def test_unreachable_database_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
    monkeypatch.setattr(sys, "argv", ["lytics", "projects", "list"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 3
    assert "cannot reach the database" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["dev"],
        ["db"],
        ["db", "upgrade"],
        ["db", "downgrade"],
        ["db", "current"],
        ["projects"],
        ["projects", "create"],
        ["projects", "list"],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "rotate"],
        ["keys", "revoke"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    # Through the installed console script: what a user actually types.
    result = subprocess.run(
        [sys.executable, "-m", "lytics", *command, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
