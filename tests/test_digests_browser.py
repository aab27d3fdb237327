"""The digest preview in a real browser: headless Chromium loads it from the served API.

Issue 6 asks that the preview render in a headless browser with a screenshot
and no missing images or scripts. The structural checks of the HTML live in
tests/test_digests_api.py; this proves what a reader sees: the page loads with
one request (the email references nothing), no errors, the KPI tiles are laid
out inside a 600-px card, and the screenshot shows the card, the text and the
coloured changes. Chromium is driven over DevTools (tests/support/browser.py).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine

from lytics.settings import Settings
from tests.support.browser import Image, decode_png, headless_page, live_processes
from tests.support.digests import WEEK, add_members, create_marts, seed_two_weeks
from tests.support.ingest import served_ingest

RECIPIENT = "ann@example.com"
WIDTH, HEIGHT = 800, 1000
BACKGROUND = (0xF2, 0xF4, 0xF7)  # the body colour in lytics/digests/render.py
WHITE = (0xFF, 0xFF, 0xFF)

# From the numbers seed_two_weeks writes (this week vs the one before), as a reader sees them;
# pushed metrics follow the site tiles in name order.
EXPECTED_TILES = [
    ["Sessions", "123", "▲ 23.0 %", "last week 100"],
    ["Pageviews", "246", "▲ 23.0 %", "last week 200"],
    ["Unique visitors", "123", "▲ 23.0 %", "last week 100"],
    ["Conversions", "8", "▼ 20.0 %", "last week 10"],
    ["Engagement", "0.50", "▲ 25.0 %", "last week 0.40"],
    ["Reach", "1,500", "▲ 50.0 %", "last week 1,000"],
]

# Everything is read from the rendered page: innerText and layout boxes, not the markup.
PROBE = """(() => {
  const box = (el) => { const r = el.getBoundingClientRect();
    return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width}; };
  const card = document.querySelector('body > table table');
  return {
    readyState: document.readyState,
    contentType: document.contentType,
    scripts: document.scripts.length,
    images: document.images.length,
    embedded: document.querySelectorAll('iframe, object, embed, link, style').length,
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    card: box(card),
    heading: box(card.querySelector('h1')),
    headingText: card.querySelector('h1').innerText,
    tiles: Array.from(card.querySelectorAll('td[width="33%"]')).map((td) => ({
      text: Array.from(td.querySelectorAll('p')).map((p) => p.innerText),
      cell: box(td),
      change: box(td.querySelectorAll('p')[2]),
    })),
  };
})()"""


def _near(pixel: tuple[int, int, int], colour: tuple[int, int, int], tolerance: int = 3) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def _pixels(image: Image, box: dict[str, float]) -> list[tuple[int, int, int]]:
    return [
        image.pixel(x, y)
        for y in range(int(box["top"]), int(box["bottom"]))
        for x in range(int(box["left"]), int(box["right"]))
    ]


def _keep(screenshot: Path) -> None:
    artifacts = os.environ.get("LYTICS_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(artifacts) / "digest-preview.png")


def test_the_preview_renders_in_headless_chromium_with_nothing_missing(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    create_marts(engine)
    served = settings.model_copy(update={"public_url": "http://lytics.test"})
    with served_ingest(served, engine) as api:
        seed_two_weeks(engine, api.project_id)
        add_members(engine, api.project_id, [RECIPIENT])
        query = urlencode({"email": RECIPIENT, "week": WEEK.isoformat(), "format": "html"})
        url = f"{api.base}/v1/digest/preview?{query}"
        with headless_page(tmp_path, WIDTH, HEIGHT) as page:
            chromium = page.process_group
            load = page.open(url, headers=api.bearer())
            png = page.screenshot()
            dom: dict[str, Any] = page.devtools.evaluate(PROBE)

    screenshot = tmp_path / "digest-preview.png"
    screenshot.write_bytes(png)
    _keep(screenshot)

    # Loaded, and the preview document was the only request: nothing to miss, nothing failed.
    assert load.status == 200
    assert load.requests == [url]
    assert load.failed == []
    assert load.error_responses == []
    assert load.exceptions == []
    assert load.console_errors == []
    assert dom["readyState"] == "complete"
    assert dom["contentType"] == "text/html"
    assert dom["scripts"] == 0
    assert dom["images"] == 0
    assert dom["embedded"] == 0

    # The numbers the API computed from the marts, as rendered text, tile by tile.
    assert dom["headingText"] == "site: your week in numbers"
    assert [tile["text"] for tile in dom["tiles"]] == EXPECTED_TILES

    # An email-sized layout: a card of at most 600 px, centred, nothing sticking out.
    card = dom["card"]
    assert 560 <= card["width"] <= 600
    assert abs(card["left"] - (WIDTH - card["right"])) <= 1
    assert dom["scrollWidth"] <= dom["innerWidth"] == WIDTH
    for tile in dom["tiles"]:
        assert card["left"] < tile["cell"]["left"] < tile["cell"]["right"] < card["right"]

    # The screenshot is the viewport, and it shows the page, not a blank frame.
    image = decode_png(png)
    assert (image.width, image.height) == (WIDTH, HEIGHT)
    assert _near(image.pixel(2, 2), BACKGROUND)
    row = int(card["top"]) + 12  # below the rounded corners, above the first line of text
    white = [x for x in range(WIDTH) if _near(image.pixel(x, row), WHITE)]
    assert abs(len(white) - card["width"]) <= 2
    assert abs(white[0] - card["left"]) <= 1
    assert _near(image.pixel(int(card["left"]) - 4, row), BACKGROUND)
    assert any(max(p) < 90 for p in _pixels(image, dom["heading"]))  # dark heading text
    sessions, conversions = dom["tiles"][0], dom["tiles"][3]
    assert any(g > r + 60 and g > b + 30 for r, g, b in _pixels(image, sessions["change"]))
    assert any(r > g + 80 and r > b + 80 for r, g, b in _pixels(image, conversions["change"]))
    assert len({p for line in image.rows for p in line}) > 50  # antialiased text, not flat

    # Chromium and all its children are gone once the page is closed.
    deadline = time.monotonic() + 5
    while live_processes(chromium) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live_processes(chromium) == []
