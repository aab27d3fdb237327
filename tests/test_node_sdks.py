"""The stock Node SDKs from the npm registry, unmodified, pointed at a live API, store everything.

`@segment/analytics-node` and `@rudderstack/rudder-sdk-node` are pinned in
tests/sdk/node/package-lock.json and installed with `npm ci` when missing. The
RudderStack SDK gzips its batches and axios labels them
`application/x-www-form-urlencoded`: the API must read them as JSON anyway.
An unreachable registry fails the test; it is not a reason to skip it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from lytics.settings import Settings
from tests.support.ingest import Ingest, served_ingest

NODE_DIR = Path(__file__).parent / "sdk" / "node"
EVENTS = 230  # several flushes of 50, and a partial one


@pytest.fixture(scope="module")
def node_modules() -> Path:
    npm = shutil.which("npm")
    assert npm is not None, "npm is required"
    assert shutil.which("node") is not None, "Node 20 is required"
    installed = NODE_DIR / "node_modules"
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    wanted = {name for name in lock["packages"] if name}
    if not all((NODE_DIR / name).is_dir() for name in wanted):
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return installed


@pytest.fixture
def api(settings: Settings, engine: Engine) -> Iterator[Ingest]:
    with served_ingest(settings, engine) as ingest:
        yield ingest


def _send(sdk: str, api: Ingest) -> dict[str, list[str]]:
    done = subprocess.run(
        ["node", "send.js", sdk, api.base, api.write_key, str(EVENTS)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{sdk} failed:\n{done.stdout}\n{done.stderr}"
    report: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("sdk", ["segment", "rudderstack"])
def test_stock_node_sdk_stores_every_event_exactly_once(
    node_modules: Path, api: Ingest, sdk: str
) -> None:
    report = _send(sdk, api)
    assert report["errors"] == []
    sent = report["sent"]
    assert len(sent) == len(set(sent)) == EVENTS
    counts = dict(
        api.rows(
            "SELECT message_id, count(*) FROM raw.events WHERE project_id = :p GROUP BY 1",
            p=api.project_id,
        )
    )
    assert set(counts) == set(sent), sorted(set(sent) ^ set(counts))[:10]
    assert set(counts.values()) == {1}
    kinds = dict(api.rows("SELECT type, count(*) FROM raw.events GROUP BY 1"))
    assert kinds == {"track": 184, "identify": 23, "page": 23}
