"""The official Segment library from PyPI, unmodified, pointed at our host, delivers everything.

Only `host` changes, as a user migrating from Segment would do it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from segment.analytics.client import Client

from tests.support.ingest import Ingest


@pytest.mark.parametrize("gzip", [False, True])
def test_segment_python_library_delivers_every_call(api: Ingest, gzip: bool) -> None:
    errors: list[Exception] = []
    client = Client(
        write_key=api.write_key,
        host=api.base,
        gzip=gzip,
        on_error=lambda error, _batch: errors.append(error),
        upload_size=50,
        max_retries=2,
    )
    sent: list[str] = []
    for i in range(120):
        _, msg = client.track(f"user-{i % 7}", "Order Completed", {"revenue": i, "currency": "EUR"})
        sent.append(msg["messageId"])
    sent.append(client.identify("user-1", {"email": "one@example.com"})[1]["messageId"])
    sent.append(client.page("user-1", "Docs", "Install", {"path": "/docs/install"})[1]["messageId"])
    sent.append(client.screen("user-2", "App", "Home")[1]["messageId"])
    sent.append(client.group("user-1", "acme", {"plan": "pro"})[1]["messageId"])
    sent.append(client.alias("user-1", "anon-1")[1]["messageId"])
    ts = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    sent.append(client.track("user-3", "Backdated", timestamp=ts)[1]["messageId"])
    client.flush()
    client.join()
    assert errors == []
    copies = dict(api.rows("SELECT message_id, count(*) FROM raw.events GROUP BY message_id"))
    assert set(copies) == set(sent)  # every call stored, by the messageId the library chose
    assert set(copies.values()) == {1}  # and exactly once
    stored = {
        r.message_id: r
        for r in api.rows(
            "SELECT message_id, type, event, user_id, original_timestamp FROM raw.events"
        )
    }
    assert sorted(stored) == sorted(sent)
    assert {r.type for r in stored.values()} == {
        "track",
        "identify",
        "page",
        "screen",
        "group",
        "alias",
    }
    assert stored[sent[-1]].original_timestamp == ts
