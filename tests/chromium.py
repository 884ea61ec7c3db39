"""Open a page in headless Chromium (Debian's package, driven by playwright) as a reader would.

`rendered(path, screenshot)` loads a local HTML file with the network cut off, waits for it,
and returns what a test needs to judge it: console errors, uncaught exceptions, dialogs (an
injected `alert` would be one), requests that left the file, every image with its natural and
rendered size, and the live playwright page for clicks. The full-page screenshot is written
to the test artefacts folder ($ROBENCH_TEST_ARTIFACTS, default test-artifacts/ in the repo).

Where Chromium or playwright is missing the caller's test is skipped, unless
ROBENCH_REQUIRE_BROWSER=1 (CI), where it fails: a browser test must not pass by not running.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
VIEWPORT = {"width": 1280, "height": 900}


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("ROBENCH_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chromium_path() -> str:
    """The browser to drive, or a skip (a failure under ROBENCH_REQUIRE_BROWSER=1)."""
    found = os.environ.get("ROBENCH_CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "playwright is not installed (pip install -e '.[browser]')"
    if found is None:
        problem = "no chromium on PATH (apt-get install chromium)"
    if problem:
        if os.environ.get("ROBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser test required but {problem}")
        pytest.skip(problem)
    return str(found)


@dataclass
class Rendered:
    page: Any  # playwright.sync_api.Page, open until the context manager exits
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def images(self) -> list[dict]:
        """Each <img>: its figure name, whether it decoded, natural and rendered width."""
        return self.page.evaluate(
            """Array.from(document.images).map(i => ({
                 figure: i.dataset.figure || i.alt, complete: i.complete,
                 natural: i.naturalWidth, shown: i.getBoundingClientRect().width,
                 section: i.closest("section") ? i.closest("section").id : null }))"""
        )

    def top_of(self, selector: str) -> float:
        return self.page.locator(selector).first.bounding_box()["y"]


@contextmanager
def rendered(path: Path, screenshot: str) -> Iterator[Rendered]:
    """`path` open in headless Chromium; its full-page screenshot saved as `screenshot`."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
            page = context.new_page()
            seen = Rendered(page)
            page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: seen.errors.append(f"uncaught: {e}"))
            page.on("dialog", lambda d: (seen.dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: seen.requests.append(r.url))
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            page.screenshot(path=str(artifacts_dir() / screenshot), full_page=True)
            yield seen
        finally:
            browser.close()
