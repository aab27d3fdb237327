"""Who is sending: an attempt is one process working on a digest run.

A digest run can take several attempts: Dagster's automatic run retry starts a new
run (a new run id) with the same config, which names the same digest run. Outbox
claims record the attempt that made them, so the next attempt can tell a claim
whose process is gone (resend it, same body and key) from one a live process is
still sending (leave it alone). Whether another attempt is over is for the
caller to say: the core knows nothing of Dagster.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field


def _every_other_attempt_is_over(_attempt_id: str) -> bool:
    # A caller that cannot ask (the CLI) resends any other attempt's claims: the
    # idempotency key makes a resend of a still-live request harmless, only wasteful.
    return True


@dataclass(frozen=True)
class Attempt:
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    is_over: Callable[[str], bool] = _every_other_attempt_is_over
