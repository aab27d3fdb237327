"""A warm dbt: one process that has already imported dbt forks a child per invocation.

A cold `dbt` command spends ~2-3 s importing its CLI, adapters and parsers before it
runs a node; for the sensor's and the hourly schedule's builds of a small window
that is most of the run. `lytics dev` starts `lytics-dbt --serve SOCKET` beside the
Dagster daemon and gives its runs the socket's path in `LYTICS_DBT_SERVER`.
`lytics-dbt` then connects, sends its arguments, working directory and environment,
and passes its own stdin, stdout and stderr over the socket (SCM_RIGHTS). The
server forks; the child takes those descriptors, that directory and that
environment, and runs dbt's CLI exactly as the cold command would. dagster-dbt
sees the same process contract: dbt's JSON log lines on stdout, dbt's exit code.

Why fork rather than run invocations in the server: dbt keeps per-invocation
global state (flags, adapters, the event manager), and a child is a fresh copy of
the warm interpreter that nothing from an earlier run can leak into. The server
itself never runs dbt, so it stays single-threaded and safe to fork.

The client runs dbt cold, in its own process, whenever no child started: no
server, a server for another dbt or interpreter, a refused request. Once a child
has started, its exit code is the answer; if it dies without one the command
fails rather than running dbt a second time.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import stat
import struct
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

SERVER_ENV = "LYTICS_DBT_SERVER"
# One message per request; an environment is a few kilobytes.
MAX_REQUEST = 1 << 20
# Unix socket paths longer than this do not fit sockaddr_un on Linux.
MAX_SOCKET_PATH = 107
# A child whose client vanished gets SIGINT (dbt cancels its queries and stops),
# then is killed if it is still running after this long.
ORPHAN_GRACE_S = 30.0
# The server reads requests one at a time: a caller that connects and sends
# nothing must not hold up the others for longer than this.
REQUEST_TIMEOUT_S = 5.0
# What a cold `dbt build` imports before it runs a node.
WARM_MODULES = (
    "dbt.cli.main",
    "dbt.adapters.postgres",
    "dbt.parser.manifest",
    "dbt.task.build",
    "dbt_common.clients.agate_helper",
    "google.protobuf.descriptor_pb2",
)


def dbt_version() -> str:
    return version("dbt-core")


def socket_path_fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= MAX_SOCKET_PATH


def serve_args(path: Path, *, warm: bool = True) -> list[str]:
    """`lytics-dbt` arguments that start a server on `path`."""
    return ["--serve", str(path)] + ([] if warm else ["--no-warm-up"])


def supported() -> bool:
    """SOCK_SEQPACKET unix sockets and SO_PEERCRED: Linux. Elsewhere dbt runs cold."""
    return sys.platform == "linux"


# --- client ---------------------------------------------------------------


def run_remote(path: str, argv: list[str]) -> int | None:
    """dbt's exit code from a warm child, or None when no child started (run cold)."""
    if not supported():
        return None
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        conn.connect(path)
    except OSError:
        return None
    with conn:
        request = {
            "dbt": dbt_version(),
            "python": sys.executable,
            "prog": sys.argv[0],
            "argv": argv,
            "cwd": os.getcwd(),
            "env": dict(os.environ),
        }
        try:
            socket.send_fds(conn, [json.dumps(request).encode()], _standard_fds())
            started = conn.recv(256)
        except OSError:
            return None
        if not started.startswith(b"pid "):
            return None  # refused (another dbt or interpreter) or the server went away
        return _wait_for_exit(conn)


def _standard_fds() -> list[int]:
    """This process's stdin, stdout and stderr; /dev/null for any that is closed."""
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(os.open(os.devnull, os.O_RDWR))
    return fds


def _wait_for_exit(conn: socket.socket) -> int:
    # A signal to this command (dagster-dbt sends SIGINT to cancel) goes to the child.
    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):
            conn.send(f"signal {signum}".encode())

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    while True:
        message = conn.recv(256)
        if message.startswith(b"exit "):
            return int(message.split()[1])
        if not message:
            print("lytics-dbt: the warm dbt process ended without an exit code", file=sys.stderr)
            return 1


# --- server ---------------------------------------------------------------


class _Stop(Exception):
    pass


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def serve(path: Path, warm_up: Sequence[str] = ()) -> None:
    """Import dbt once (and run the `warm_up` dbt command), then fork a child for
    every request until SIGTERM or SIGINT."""
    if not supported():
        raise SystemExit(f"lytics-dbt: the warm dbt server needs Linux, not {sys.platform}")
    if not socket_path_fits(path):
        raise SystemExit(f"lytics-dbt: socket path too long for a unix socket: {path}")
    for module in WARM_MODULES:
        importlib.import_module(module)
    if warm_up:
        _warm_up(path, list(warm_up))
    elif hazards := _fork_hazards():
        raise SystemExit(f"lytics-dbt: importing dbt left {hazards}; forking is not safe")
    # Children are never waited for: the kernel reaps them.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # Only this user may connect: a request runs dbt with the caller's environment.
    umask = os.umask(0o177)
    try:
        listener.bind(str(path))
    finally:
        os.umask(umask)
    listener.listen(64)
    server_pid = os.getpid()
    print(f"lytics-dbt: dbt {dbt_version()} warm on {path}", flush=True)
    try:
        while True:
            conn, _ = listener.accept()
            with conn:
                _handle(conn)
    except _Stop as stop:
        print(f"lytics-dbt: {stop}, stopping", flush=True)
    finally:
        listener.close()
        # A child leaves through here too (see _child); the socket is the server's.
        if os.getpid() == server_pid:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _warm_up(path: Path, argv: list[str]) -> None:
    """Run a dbt command here, before serving, so every child inherits what dbt builds
    on its first invocation in a process: the generated (de)serialization code of its
    artifacts, their JSON schemas, compiled templates (~1 s of every first run).

    The command must leave nothing a fork should not share; if it leaves a thread or
    an open socket, the server starts again without a warm-up. (dbt's static parser,
    a Rust library, leaves a thread pool: the warm-up runs without it.)
    """
    began = time.monotonic()
    quiet = ["--log-level-file", "none", "--quiet", "--no-static-parser"]
    with tempfile.TemporaryDirectory(prefix="lytics-dbt-warm-up-") as target:
        # The second run reads the parse the first saved, as a real run does.
        codes = [_run_dbt("dbt", [*argv, "--target-path", target, *quiet]) for _ in range(2)]
    if hazards := _fork_hazards():
        print(f"lytics-dbt: the warm-up left {hazards}; starting again without it", flush=True)
        launcher = "lytics_assets.metrics.dbt_launcher"
        os.execv(sys.executable, [sys.executable, "-m", launcher, *serve_args(path, warm=False)])  # noqa: S606 - our own interpreter and module
    print(
        f"lytics-dbt: warmed up by `dbt {' '.join(argv[:1])}` in "
        f"{time.monotonic() - began:.1f}s (exit codes {codes})",
        flush=True,
    )


def _fork_hazards() -> str:
    """What this process holds that a forked child must not share with it.

    Threads are counted by the kernel, not by `threading`: a native library's
    thread pool (dbt's static parser starts one) does not survive a fork, and a
    child that waits on it waits forever.
    """
    found = []
    threads = _native_threads()
    if threads > 1:
        found.append(f"{threads - 1} thread(s)")
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                found.append(f"a socket (fd {name})")
    return ", ".join(found)


def _native_threads() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise RuntimeError("no thread count in /proc/self/status")


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def _handle(conn: socket.socket) -> None:
    fds: list[int] = []
    try:
        if _peer_uid(conn) != os.getuid():
            _refuse(conn, "another user")
            return
        conn.settimeout(REQUEST_TIMEOUT_S)
        data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, 3)
        request = json.loads(data)
        if (request.get("dbt"), request.get("python")) != (dbt_version(), sys.executable):
            _refuse(conn, "another dbt or interpreter")
            return
        if len(fds) != 3:
            _refuse(conn, "expected stdin, stdout and stderr")
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(conn, fds, request)
        # The command only: arguments can carry values (--vars) that do not belong in a log.
        command = next((a for a in request["argv"] if not a.startswith("-")), "")
        print(f"lytics-dbt: {command}: started pid {pid}", flush=True)
    except (OSError, ValueError) as error:
        print(f"lytics-dbt: request dropped: {error!r}", file=sys.stderr, flush=True)
    finally:
        for fd in fds:
            os.close(fd)


def _refuse(conn: socket.socket, reason: str) -> None:
    print(f"lytics-dbt: request refused: {reason}", flush=True)
    conn.send(f"refused: {reason}".encode())


def _child(conn: socket.socket, fds: list[int], request: dict[str, Any]) -> NoReturn:
    """Run dbt in the forked child, then exit it the way a dbt process exits.

    The exit unwinds the server's stack (copied by fork) to the interpreter's
    normal shutdown, so dbt's objects are finalized as in a cold run (its
    multiprocessing locks, for one, are unregistered instead of reported leaked).
    """
    code = 1
    finished = threading.Event()
    try:
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        conn.settimeout(None)  # the run may take hours; its client waits as long
        for target, fd in zip((0, 1, 2), fds, strict=True):
            os.dup2(fd, target)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        conn.send(f"pid {os.getpid()}".encode())
        threading.Thread(target=_watch_client, args=(conn, finished), daemon=True).start()
        code = _run_dbt(request.get("prog", "dbt"), request["argv"])
    except BaseException:  # whatever happens, the client gets an exit code
        traceback.print_exc()
    finally:
        finished.set()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        with contextlib.suppress(OSError):
            conn.send(f"exit {code}".encode())
    raise SystemExit(code)


def _run_dbt(prog: str, argv: list[str]) -> int:
    from dbt.cli.main import cli

    saved = sys.argv
    sys.argv = [prog, *argv]  # click names the program after sys.argv[0] in its messages
    try:
        cli()
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)
        return 1
    finally:
        sys.argv = saved
    return 0


def _watch_client(conn: socket.socket, finished: threading.Event) -> None:
    """Apply the client's forwarded signals; stop dbt if the client goes away."""
    while True:
        try:
            message = conn.recv(256)
        except OSError:
            message = b""
        if finished.is_set():
            return
        if message.startswith(b"signal "):
            os.kill(os.getpid(), int(message.split()[1]))
            continue
        # The command that started this run is gone (killed, or its run worker died).
        os.kill(os.getpid(), signal.SIGINT)
        if not finished.wait(ORPHAN_GRACE_S):
            os._exit(1)
        return
