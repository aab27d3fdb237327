"""Run the `lytics` command in-process, through its real entry point."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass

import pytest

from lytics.cli import main
from lytics.settings import get_settings


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def invoke(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *args: str,
    stdin: str = "",
) -> CliResult:
    """`lytics ARGS` as a user types it: exit code, stdout and stderr."""
    get_settings.cache_clear()  # the environment may have changed since the last command
    monkeypatch.setattr(sys, "argv", ["lytics", *args])
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    capsys.readouterr()
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    get_settings.cache_clear()
    return CliResult(code, captured.out, captured.err)
