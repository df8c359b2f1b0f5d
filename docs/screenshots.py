"""Take the console screenshots in this folder (README, "Console"): the demo's state, seen by
Chromium from Debian's packages through Playwright.

    .venv/bin/python docs/screenshots.py

Runs ``ticketbridge demo`` (every integration twice, a Tiqets sale), then serves the console
on its project and state on loopback and photographs the overview, a run and the dead letters
(and the overview at phone width).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright
from pydantic import SecretStr

from ticketbridge import logs
from ticketbridge.demo import run_demo
from ticketbridge.sandbox import serve_asgi
from ticketbridge.web import UiSettings, create_app

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "screenshot-password"  # noqa: S105 - this script's own console, on loopback


def photograph(path: Path, state: str, urls: dict[str, str], report: dict[str, Any]) -> None:
    settings = UiSettings(path, database_url=state, operator_password=SecretStr(PASSWORD))
    server, thread, url = serve_asgi(create_app(settings), "console", lifespan="on")
    try:
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.goto(f"{url}/login")
            page.fill("input[name=name]", "Maria (box office)")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/")
            page.screenshot(path=HERE / "console-overview.png", full_page=True)
            # The Heyloyalty sync's second run: changed members, and records it refused.
            page.goto(f"{url}/runs/4")
            page.screenshot(path=HERE / "console-run.png", full_page=True)
            page.goto(f"{url}/dead-letters")
            page.screenshot(path=HERE / "console-dead-letters.png", full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(f"{url}/")
            page.screenshot(path=HERE / "console-phone.png")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def main() -> int:
    logs.configure("WARNING")
    run_demo(records=300, then=photograph)
    print("wrote", ", ".join(sorted(p.name for p in HERE.glob("console-*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
