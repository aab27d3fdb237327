"""Clients that post batches flat out and remember every answer (outage tests)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


@dataclass
class Answer:
    ids: list[str]
    status: int
    sent: float
    answered: float

    @property
    def acknowledged(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Load:
    base: str
    write_key: str
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def worker(self, n: int) -> None:
        seq = 0
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                ids = [f"w{n}-{seq}-{i}" for i in range(10)]
                seq += 1
                batch = {
                    "batch": [
                        {"type": "track", "event": "E", "userId": "u", "messageId": m} for m in ids
                    ]
                }
                sent = time.monotonic()
                try:
                    status = client.post(
                        f"{self.base}/v1/batch", json=batch, auth=(self.write_key, "")
                    ).status_code
                except httpx.HTTPError:
                    status = 0  # connection reset: not an acknowledgement
                with self.lock:
                    self.answers.append(Answer(ids, status, sent, time.monotonic()))

    def count(self, predicate: Callable[[Answer], bool]) -> int:
        with self.lock:
            return sum(1 for a in self.answers if predicate(a))

    def acknowledged(self, sent_after: float = -math.inf) -> int:
        """How many requests (sent after `sent_after`, a time.monotonic()) were acknowledged."""
        return self.count(lambda a: a.acknowledged and a.sent > sent_after)

    def run(self, workers: int) -> None:
        self.threads = [
            threading.Thread(target=self.worker, args=(n,), daemon=True) for n in range(workers)
        ]
        for t in self.threads:
            t.start()

    def finish(self, timeout_s: float = 60) -> None:
        """Stop sending and wait for the requests in flight to be answered."""
        self.stop.set()
        for t in self.threads:
            t.join(timeout_s)
