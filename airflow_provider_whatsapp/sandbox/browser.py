"""Headless Chromium for the inbox page: the browser test and the demo's screenshot share this.

It drives the system's Chromium (Debian's ``chromium`` package) through Playwright, never a browser
that Playwright downloads. Playwright is a development dependency, imported only when used.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_chromium() -> str | None:
    """The Chromium executable to drive (``CHROMIUM`` overrides), or ``None`` when there is none."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if os.path.exists(explicit) else None
    return next((path for path in CHROMIUM_CANDIDATES if os.path.exists(path)), None)


@contextmanager
def chromium_page(width: int = 1280, height: int = 800) -> Iterator[Any]:
    """A Playwright page in headless Chromium with a fresh profile, closed afterwards."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise RuntimeError("No Chromium found: install Debian's 'chromium' package (make browser-deps).")
    profile = tempfile.mkdtemp(prefix="whatsapp-sandbox-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=executable,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": width, "height": height},
                device_scale_factor=1,
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                yield page
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot_inbox(url: str, path: str, *, wa_id: str | None = None, timeout_ms: int = 15000) -> str:
    """Open the inbox at ``url`` (on ``wa_id``'s conversation if given) and save a PNG to ``path``."""
    target = f"{url.rstrip('/')}/" + (f"#{wa_id}" if wa_id else "")
    with chromium_page() as page:
        page.goto(target)
        page.wait_for_selector(".msg", timeout=timeout_ms)
        page.wait_for_timeout(500)  # let images finish loading
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        page.screenshot(path=path)
    return path
