"""The README, as a newcomer follows it: every `sh` block's command, run against a platform.

`lytics dev` starts on ports of its own in a temporary data folder (what `make dev`
runs, on other ports); then each README command runs through bash from the
checkout, in README order, with only the README's example values replaced by the
test's (ports, the S3 endpoint and bucket, the key `lytics demo` printed). The
commands find the custom ports themselves: no variable beyond the README's.

`test_every_readme_command_is_accounted_for` keeps the list below equal to the
README, so a command added there fails until it is run here (or a reason is given).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from lytics.embedded_postgres import EmbeddedPostgres
from tests.support.exports import new_bucket
from tests.support.http import free_port

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
STARTUP_DEADLINE_S = 600
MARTS_DEADLINE_S = 900
COMMAND_DEADLINE_S = 300
S3_SECRET = "readme-secret-access-key-0123456789"

# Settings the test process may carry that a newcomer's shell does not have.
FOREIGN_ENV = ("LYTICS_", "DAGSTER_", "DATABASE_URL", "AWS_", "S3_", "RESEND_", "GITHUB_")


def readme_commands(text: str) -> list[str]:
    """Each command of the README's ```sh blocks (continuations joined, comments dropped)."""
    commands: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        pending = ""
        for raw in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", raw).strip()
            if not line or line.startswith("#"):
                continue
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            commands.append(pending + line)
            pending = ""
    return commands


@dataclass
class Platform:
    """A running `lytics dev` and what the README's example values stand for here."""

    api_port: int
    ui_port: int
    s3_endpoint: str
    bucket: str
    env: dict[str, str]
    secret_key: str = ""
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ui(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def substitute(self, command: str) -> str:
        replaced = (
            command.replace("http://127.0.0.1:9000", self.s3_endpoint)
            .replace("127.0.0.1:8000", f"127.0.0.1:{self.api_port}")
            .replace("127.0.0.1:3000", f"127.0.0.1:{self.ui_port}")
            .replace("my-bucket", self.bucket)
        )
        return replaced.replace("lys_…", self.secret_key) if self.secret_key else replaced

    def run(self, command: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", self.substitute(command)],
            cwd=REPO,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=COMMAND_DEADLINE_S,
            check=False,
        )
        assert done.returncode == 0, (
            f"{command}\nexit {done.returncode}\n{done.stdout}{done.stderr}"
        )
        return done


# --------------------------------------------------------------------------- the steps


def _demo(p: Platform, command: str) -> None:
    out = p.run(command).stdout
    assert f"to {p.api} in" in out, out  # found the custom port itself
    keys = re.search(r"demo-s1-1\n.*?secret key \(read API, servers\):\s+(lys_\S+)", out, re.S)
    assert keys, out
    p.secret_key = keys.group(1)
    assert f"curl -H 'Authorization: Bearer {p.secret_key}'" in out


def _export(p: Platform, command: str) -> None:
    name, value = p.substitute(command).removeprefix("export ").split("=", 1)
    assert value == p.secret_key, "the README's placeholder must stand for the printed key"
    p.env[name] = value


def _tiles(p: Platform, command: str) -> None:
    """The README's curl, again until Dagster has built the marts from the demo's events."""
    deadline = time.monotonic() + MARTS_DEADLINE_S
    while True:
        answer = json.loads(p.run(command).stdout)
        assert answer["project"] == "demo-s1-1", answer
        values = {t["key"]: t["value"] for t in answer["tiles"]}
        if answer["built"] and (values.get("pageviews") or 0) > 0:
            assert (values.get("sessions") or 0) > 0, answer
            return
        assert time.monotonic() < deadline, f"marts not built within {MARTS_DEADLINE_S}s: {answer}"
        time.sleep(2)  # a poll interval: the condition is checked again, not assumed


def _digest_preview(p: Platform, command: str) -> None:
    out = p.run(command).stdout
    assert "Pageviews" in out, out
    # The unsubscribe link points at the API this platform serves.
    assert f"{p.api}/v1/digest/unsubscribe?token=" in out, out


def _destination_add(p: Platform, command: str) -> None:
    out = p.run(command, stdin=S3_SECRET + "\n").stdout
    assert out.startswith("added s3 "), out
    assert S3_SECRET not in out


def _destination_test(p: Platform, command: str) -> None:
    assert p.run(command).stdout.startswith(f"ok: s3://{p.bucket}"), command


def _exports_backfill(p: Platform, command: str) -> None:
    out = p.run(command).stdout
    assert re.match(r"backfill \S+: 2 daily partitions queued", out), out


def _metrics_backfill(p: Platform, command: str) -> None:
    out = p.run(command).stdout
    found = re.search(rf"{re.escape(p.ui)}/runs/b/(\S+)", out)
    assert found, out  # the UI on its custom port, found without a setting
    query = "query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename } }"
    answer = httpx.post(
        f"{p.ui}/graphql", json={"query": query, "variables": {"id": found.group(1)}}, timeout=30
    ).json()
    assert answer["data"]["partitionBackfillOrError"]["__typename"] == "PartitionBackfill"


Step = Callable[[Platform, str], None]

# Every README `sh` command, in README order, with what it must do.
RUN: dict[str, Step] = {
    ".venv/bin/lytics demo": _demo,
    "export LYTICS_KEY=lys_…": _export,
    'curl -H "Authorization: Bearer $LYTICS_KEY" http://127.0.0.1:8000/v1/dashboard/tiles': _tiles,
    ".venv/bin/lytics digests preview demo-s1-1 you@example.com --text": _digest_preview,
    ".venv/bin/lytics exports destinations add --project demo-s1-1 --name s3 --bucket my-bucket "
    "--endpoint-url http://127.0.0.1:9000 --access-key-id AKIAEXAMPLE "
    "--secret-access-key -": _destination_add,
    ".venv/bin/lytics exports destinations test s3 --project demo-s1-1": _destination_test,
    ".venv/bin/lytics exports backfill --since 2026-01-01 --until 2026-01-03 "
    "--project demo-s1-1": _exports_backfill,
    ".venv/bin/lytics metrics backfill --from 2026-01-01 --to 2026-01-07": _metrics_backfill,
}
# The README commands this test does not run, and why.
NOT_RUN = {
    "make dev": "runs `$(BIN)/lytics dev` (checked below), which this test starts on other ports",
    "make test": "the suite this test is part of",
    "LYTICS_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres make test": (
        "the suite against a server that is not here"
    ),
}


def test_every_readme_command_is_accounted_for() -> None:
    commands = readme_commands(README.read_text())
    assert set(commands) == set(RUN) | set(NOT_RUN), "README and RUN/NOT_RUN disagree"
    assert [c for c in commands if c in RUN] == list(RUN), "RUN is not in README order"
    # `make dev` is what this test starts.
    assert re.search(r"^dev: .*\n\t\$\(BIN\)/lytics dev\n", (REPO / "Makefile").read_text(), re.M)


def test_make_help_lists_every_target() -> None:
    makefile = (REPO / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY: (.*)$", makefile, re.M).group(1).split())  # type: ignore[union-attr]
    shown = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = {line.split()[1] for line in shown.splitlines() if line.startswith("make ")}
    assert listed == phony


@pytest.fixture
def data_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="lyt-readme-", dir="/tmp"))
    yield folder
    EmbeddedPostgres.in_data_dir(folder).stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def platform(data_dir: Path, s3_endpoint: str) -> Iterator[Platform]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
    env["LYTICS_DATA_DIR"] = str(data_dir)  # the README's setting: keeps the checkout's .lytics
    p = Platform(free_port(), free_port(), s3_endpoint, new_bucket(s3_endpoint), env)
    log = data_dir.parent / f"{data_dir.name}.log"
    with log.open("wb") as out:
        dev = subprocess.Popen(
            [
                str(REPO / ".venv/bin/lytics"),
                "dev",
                "--api-port",
                str(p.api_port),
                "--dagster-port",
                str(p.ui_port),
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while "Press Ctrl-C to stop." not in log.read_text(errors="replace"):
            assert dev.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.5)
        yield p
    finally:
        dev.send_signal(signal.SIGTERM)
        try:
            dev.wait(60)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait()
        log.unlink(missing_ok=True)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.timeout(MARTS_DEADLINE_S + STARTUP_DEADLINE_S + 8 * COMMAND_DEADLINE_S)
def test_the_readme_path_works_on_custom_ports(platform: Platform) -> None:
    for command in readme_commands(README.read_text()):
        if command in RUN:
            RUN[command](platform, command)
    # Not a README line, but the same promise: the URL it prints is the one served.
    added = platform.run(".venv/bin/lytics webhooks add-secret demo-s1-1 acme").stdout
    assert f"Webhook URL: {platform.api}/v1/webhooks/acme?project=demo-s1-1" in added
