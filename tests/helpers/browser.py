"""A real headless browser for the tests: Debian's Chromium, driven by Playwright.

Playwright normally downloads a browser build of its own (``playwright install``); these machines
reach no such download, so the tests launch the system's Chromium (``apt-get install chromium``,
which scripts/bootstrap does) through ``executable_path``. ``FIXENGINE_CHROMIUM`` names another
binary. A missing browser fails the test, naming the fix: CI installs it, so it never skips."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator

from playwright.async_api import Browser, async_playwright

# Headless as root (no sandbox), and no calls home: the machine's network is closed, and Chromium's
# background connections (updates, sync, field trials) would only be refused and logged.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions",
]


def chromium_path() -> str:
    """The Chromium binary the tests drive."""
    path = os.environ.get("FIXENGINE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError("no Chromium for the browser tests: run scripts/bootstrap as root "
                           "(apt-get install chromium), or set FIXENGINE_CHROMIUM to a Chromium binary")
    return path


@contextlib.asynccontextmanager
async def headless_chromium() -> AsyncIterator[Browser]:
    """Chromium, headless, in a fresh profile; closed after."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
