"""The one way a test waits: poll a condition until it holds or a generous deadline passes.

Deadlines are generous on purpose (a busy two-core machine can be tens of times
slower than an idle one); they only bound how long a broken test hangs. A test
never sleeps a guessed time and never asserts how long something took.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 120.0


def wait_until(
    condition: Callable[[], T | None],
    what: str,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    interval_s: float = 0.05,
    detail: Callable[[], str] | None = None,
) -> T:
    """The first truthy value `condition` returns; AssertionError naming `what` at the deadline.

    `condition` may raise to give up early (a process that exited, an error answer).
    `detail` adds what helps to understand a timeout (a log tail, the last answer).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"{what}: not within {timeout_s:g} s{extra}")
        time.sleep(interval_s)
