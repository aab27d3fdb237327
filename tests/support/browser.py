"""Headless Chromium driven over the DevTools protocol, for tests that must see a real render.

No Playwright or Selenium: the protocol is JSON over one websocket (`websockets`
is already locked, through uvicorn[standard]), and the browser is Debian's
`chromium` package (`make browser` installs it). One page per browser, flat
sessions (`Target.attachToTarget(flatten=True)`), events buffered in order so a
test can ask afterwards what the page requested and what went wrong.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.support.wait import wait_until

CANDIDATES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
INSTALL_HINT = (
    "no Chromium found: install Debian's `chromium` package (`make browser`, i.e. "
    "`apt-get install -y chromium`) or point LYTICS_CHROMIUM at a Chrome/Chromium binary"
)
START_TIMEOUT_S = 120.0


def find_chromium() -> str:
    """The browser binary, or a test failure that says what to install (never a skip)."""
    configured = os.environ.get("LYTICS_CHROMIUM")
    if configured:
        if not os.access(configured, os.X_OK):
            pytest.fail(f"LYTICS_CHROMIUM={configured} is not executable; {INSTALL_HINT}")
        return configured
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(INSTALL_HINT)


class DevToolsError(RuntimeError):
    pass


class DevTools:
    """Commands and events on one page session. Events are kept, never dropped."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._next_id = 0
        self.session: str | None = None
        self.events: list[dict[str, Any]] = []

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        try:
            message: dict[str, Any] = json.loads(self._ws.recv(timeout=timeout))
        except TimeoutError:
            return None
        if "method" in message:
            self.events.append(message)
        return message

    def call(self, method: str, timeout: float = 60.0, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        request: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session is not None:
            request["sessionId"] = self.session
        self._ws.send(json.dumps(request))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self._receive(left)
            if message is not None and message.get("id") == self._next_id:
                if "error" in message:
                    raise DevToolsError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
        raise DevToolsError(f"{method}: no answer within {timeout} s")

    def wait_for(self, method: str, since: int, timeout: float = 60.0) -> dict[str, Any]:
        """The first `method` event at or after index `since` of `events`."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[since:]:
                if event["method"] == method:
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                raise DevToolsError(f"no {method} within {timeout} s")
            self._receive(left)

    def settle(self, quiet: float = 1.0, limit: float = 15.0) -> None:
        """Keep reading until nothing arrives for `quiet` s, so late requests are seen too."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and self._receive(quiet) is not None:
            pass

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise DevToolsError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")


@dataclass
class PageLoad:
    """What one navigation did, from the page's own Network, Runtime and Log events."""

    status: int | None = None
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    error_responses: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@dataclass
class Page:
    devtools: DevTools
    width: int
    height: int
    process_group: int

    def open(self, url: str, headers: dict[str, str] | None = None) -> PageLoad:
        if headers:
            self.devtools.call("Network.setExtraHTTPHeaders", headers=headers)
        since = len(self.devtools.events)
        navigated = self.devtools.call("Page.navigate", url=url)
        if navigated.get("errorText"):
            raise DevToolsError(f"navigation to {url} failed: {navigated['errorText']}")
        self.devtools.wait_for("Page.loadEventFired", since)
        self.devtools.settle()
        return _summarize(self.devtools.events[since:], url)

    def screenshot(self) -> bytes:
        shot = self.devtools.call("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["data"])


def _summarize(events: list[dict[str, Any]], url: str) -> PageLoad:
    load = PageLoad()
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Network.requestWillBeSent":
            load.requests.append(params["request"]["url"])
        elif method == "Network.responseReceived":
            response = params["response"]
            if response["url"] == url:
                load.status = response["status"]
            if response["status"] >= 400:
                load.error_responses.append(f"{response['status']} {response['url']}")
        elif method == "Network.loadingFailed":
            load.failed.append(f"{params.get('errorText')} ({params.get('type')})")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            load.exceptions.append(details.get("exception", {}).get("description", details["text"]))
        elif method == "Runtime.consoleAPICalled" and params["type"] in {"error", "assert"}:
            load.console_errors.append(json.dumps(params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            load.console_errors.append(f"{params['entry']['text']} {params['entry'].get('url')}")
    return load


def _devtools_port(profile: Path, process: subprocess.Popen[bytes], log: Path) -> int:
    # Chromium writes the port it picked for --remote-debugging-port=0 into this file.
    active = profile / "DevToolsActivePort"

    def port() -> int | None:
        if process.poll() is not None:
            raise DevToolsError(f"Chromium exited with {process.returncode}: {log.read_text()}")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(active.read_text().splitlines()[0])
        return None

    return wait_until(port, "Chromium's DevTools port", timeout_s=START_TIMEOUT_S)


def live_processes(group: int) -> list[int]:
    """Processes of `group` that still run (zombies excluded: they are only awaiting a reap)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # The command name is in parentheses and may hold spaces; fields follow the last ')'.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":
                alive.append(int(stat.parent.name))
    return alive


@contextlib.contextmanager
def headless_page(workdir: Path, width: int, height: int) -> Iterator[Page]:
    """A fresh headless Chromium with one blank page of `width` x `height` CSS pixels.

    Chromium runs in its own process group (renderers, GPU and zygote included),
    and the whole group is killed on the way out, whatever happened inside.
    """
    profile = workdir / "chromium-profile"
    profile.mkdir(parents=True, exist_ok=True)
    log = workdir / "chromium.log"
    command = [
        find_chromium(),
        "--headless=new",
        "--remote-debugging-port=0",
        "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={profile}",
        # Root in a container has no usable user namespaces for the sandbox.
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--mute-audio",
        f"--window-size={width},{height}",
        "about:blank",
    ]
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, start_new_session=True
        )
    try:
        port = _devtools_port(profile, process, log)
        browser_path = (profile / "DevToolsActivePort").read_text().splitlines()[1]
        with connect(f"ws://127.0.0.1:{port}{browser_path}", max_size=64 * 2**20) as ws:
            devtools = DevTools(ws)
            target = devtools.call("Target.createTarget", url="about:blank")["targetId"]
            devtools.session = devtools.call(
                "Target.attachToTarget", targetId=target, flatten=True
            )["sessionId"]
            for domain in ("Network", "Page", "Runtime", "Log"):
                devtools.call(f"{domain}.enable")
            # The screenshot's size is then exactly the viewport's, whatever the window is.
            devtools.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
            yield Page(devtools, width, height, process.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


# --------------------------------------------------------------------------- PNG


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    rows: list[list[tuple[int, int, int]]]

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        return self.rows[y][x]


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    position = 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"bad CRC in {kind!r}")
        yield kind, body
        position += 12 + length


def _unfilter(kind: int, line: bytearray, previous: bytearray, channels: int) -> bytearray:
    """Undo one row's PNG filter (RFC 2083, section 6), in place."""
    if kind == 0:
        return line
    if kind == 2:
        return bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
    for i in range(len(line)):
        left = line[i - channels] if i >= channels else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            corner = previous[i - channels] if i >= channels else 0
            line[i] = (line[i] + _paeth(left, previous[i], corner)) & 0xFF
        else:
            raise ValueError(f"unknown PNG filter {kind}")
    return line


def decode_png(data: bytes) -> Image:
    """Decode an 8-bit RGB or RGBA PNG with the stdlib (zlib), enough to look at pixels."""
    header: tuple[int, ...] = ()
    idat = b""
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in {2, 6} or interlace:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}")
    channels = 3 if colour == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    if len(raw) != height * (stride + 1):
        raise ValueError("image data does not match the header")
    previous = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        line = bytearray(raw[start + 1 : start + 1 + stride])
        line = _unfilter(raw[start], line, previous, channels)
        rows.append([(line[i], line[i + 1], line[i + 2]) for i in range(0, stride, channels)])
        previous = line
    return Image(width, height, rows)
