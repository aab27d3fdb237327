"""Exec a command with SIGINT and SIGTERM at their defaults.

A process started from a non-interactive shell inherits SIGINT as *ignored*,
and Dagster's processes then refuse to stop. Children of `lytics dev` start
through this shim so that the signals the supervisor sends always work.
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python -m lytics.devserver.default_signals COMMAND [ARGS...]")
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    os.execvp(sys.argv[1], sys.argv[1:])  # noqa: S606 - the command comes from our supervisor


if __name__ == "__main__":
    main()
