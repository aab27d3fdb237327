"""Where `lytics dev` puts the warm dbt server's socket, and when it runs none."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lytics.devserver import bootstrap
from lytics.settings import Settings


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, environment="test")


def test_the_socket_lives_in_the_data_folder(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    assert bootstrap.dbt_socket(_settings(folder)) == folder.resolve() / "dbt.sock"


def test_no_server_where_a_unix_socket_path_would_not_fit(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 120)
    assert bootstrap.dbt_socket(_settings(deep)) is None


def test_no_server_off_linux(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The server needs SOCK_SEQPACKET unix sockets and SO_PEERCRED; elsewhere a
    # server that exits at once would stop all of `lytics dev`.
    monkeypatch.setattr(sys, "platform", "darwin")
    assert bootstrap.dbt_socket(_settings(tmp_path)) is None
