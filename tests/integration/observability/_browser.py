"""Drive the dashboard in headless Chromium (a subprocess of the test).

playwright's sync API (its async one needs asyncio; the tests run on trio),
launched with the system browser: Debian's chromium, never a downloaded
build. Usage::

    python -m tests.integration.observability._browser CHROMIUM URL CALLS SCREENSHOT

Prints ``READY <calls ended>`` once the page is live, ``ACTIVE <n>`` once it
shows a running call, then one JSON line of what the page shows once it
counts CALLS ended calls, and saves a screenshot.
"""

from __future__ import annotations

import json
import sys

from playwright.sync_api import expect, sync_playwright

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000
NO_VALUE = "\N{EN DASH}"  # what the page shows before it can compute a rate


def main(chromium: str, url: str, calls: int, screenshot: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            page.goto(url)
            # Locator assertions run in playwright's isolated world, so the
            # page's strict CSP (no eval) stays in force for the test.
            expect(page.locator("#status")).to_have_text("live")
            # Two observations: rates need a previous one.
            expect(page.locator("#events-rate")).not_to_have_text(NO_VALUE)
            print("READY", page.text_content("#calls-total"), flush=True)
            expect(page.locator("#active-calls")).not_to_have_text("0")
            print("ACTIVE", page.text_content("#active-calls"), flush=True)
            expect(page.locator("#calls-total")).to_have_text(str(calls))
            expect(page.locator("#active-calls")).to_have_text("0")
            shown = {
                key: page.text_content(f"#{key}")
                for key in ("calls-total", "sessions", "tools", "stages", "errors")
            }
            page.screenshot(path=screenshot, full_page=True)
            print(json.dumps(shown), flush=True)
        finally:
            browser.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
