"""A real pgbouncer (Debian's package) in transaction mode, in front of the test Postgres.

`make test` installs it (`make pgbouncer`); a test that needs it fails, never skips,
when it is missing. pgbouncer refuses to run as root, so as root it runs as the
user that owns the Postgres server's socket folder (the embedded server's own
user), or `nobody` for a server reached over TCP.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy.engine import make_url

from tests.support.http import free_port
from tests.support.wait import wait_until

BINARY_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or next(
        (p for p in BINARY_PATHS if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise AssertionError("pgbouncer is not installed: run `make pgbouncer` (Debian package)")
    return found


@dataclass
class Pgbouncer:
    folder: Path
    port: int
    run_as: str | None
    process: subprocess.Popen[bytes] | None = None

    def url(self, user: str, password: str, database: str) -> str:
        """A psycopg URL that reaches `database` as `user` through this pgbouncer."""
        return (
            f"postgresql+psycopg://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@127.0.0.1:{self.port}/{database}"
        )

    def start(self) -> None:
        command = [pgbouncer_binary(), str(self.folder / "pgbouncer.ini")]
        if self.run_as is not None:
            command[1:1] = ["-u", self.run_as]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        wait_until(
            lambda: self._exited() or self._accepts(), "pgbouncer to listen", detail=self.log
        )
        if self._exited():
            raise AssertionError(f"pgbouncer exited at start:\n{self.log()}")

    def stop(self) -> None:
        """Immediate shutdown (SIGTERM): every client connection is cut."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self.process = None
        # No wait for the port: the connections it cut linger in TIME_WAIT, and
        # pgbouncer binds its port again with SO_REUSEADDR.

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text()[-4000:] if path.exists() else "(no log)"

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def _exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None


def _upstream(server_url: str) -> tuple[str, int]:
    """Where pgbouncer finds Postgres: the socket folder or host, and the port."""
    url = make_url(server_url)
    host = url.host or str(url.query.get("host", "127.0.0.1"))
    return host, url.port or 5432


def _run_as(host: str) -> str | None:
    if os.geteuid() != 0:
        return None
    if host.startswith("/"):
        return pwd.getpwuid(Path(host).stat().st_uid).pw_name
    return "nobody"


@contextlib.contextmanager
def running_pgbouncer(server_url: str, folder: Path, users: dict[str, str]) -> Iterator[Pgbouncer]:
    """pgbouncer in transaction mode for every database of `server_url`'s server.

    `users` maps each login to its password (SCRAM between client and pgbouncer; the
    same password is used upstream when Postgres asks for one).
    """
    host, port = _upstream(server_url)
    folder.mkdir(parents=True, exist_ok=True)
    bouncer = Pgbouncer(folder, free_port(), _run_as(host))
    (folder / "userlist.txt").write_text(
        "".join(f'"{user}" "{password}"\n' for user, password in users.items())
    )
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {bouncer.port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {folder / "userlist.txt"}
pool_mode = transaction
default_pool_size = 20
max_client_conn = 500
logfile = {folder / "pgbouncer.log"}
pidfile = {folder / "pgbouncer.pid"}
"""
    )
    if bouncer.run_as is not None:
        account = pwd.getpwnam(bouncer.run_as)
        for path in (folder, *folder.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.stop()
