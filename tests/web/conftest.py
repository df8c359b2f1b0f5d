"""The console in a real browser: Debian's Chromium driven by Playwright, against the console
served by uvicorn on loopback, on a project wired to sandboxes (uvicorn on loopback too),
with the state on SQLite and on PostgreSQL.

Chromium comes from Debian's packages (``.ci/run`` installs it; Playwright's own download
cannot run here). Without it the browser tests skip, unless ``TICKETBRIDGE_REQUIRE_SERVICES=1``
(CI), where a missing browser fails them, as a missing PostgreSQL does.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests import pg
from ticketbridge import logs
from ticketbridge.demo import _demo_tiqets_sale, build_sandbox, project_dict, sandbox_env
from ticketbridge.project import load_project
from ticketbridge.runtime import Runtime
from ticketbridge.sandbox import RunningSandbox, free_port, serve_asgi, serve_in_thread
from ticketbridge.web import UiSettings, create_app
from ticketbridge.web.console import Console

CHROMIUM = os.environ.get("TICKETBRIDGE_TEST_CHROMIUM", "/usr/bin/chromium")
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
OPERATOR_PASSWORD = "operator-pw-7Hq2vX"
VIEWER_PASSWORD = "viewer-pw-Lm4s9T"
SMTP_PASSWORD = "smtp-secret-Zr8pW3xK"
PLATFORMS = ["ticketco", "airship_crm", "ticketmaster", "heyloyalty", "acme"]
TIMEOUT_MS = 30_000


# Package scope, not session: Playwright's sync API keeps an event loop running in this
# thread while it is started, and a later test of another package may call asyncio.run().
@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}: apt-get install chromium"
        if pg.services_required():
            pytest.fail(f"{pg.ENV_REQUIRE}=1 but {message}")
        pytest.skip(message)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    launched = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@dataclass
class ConsoleStack:
    """Sandboxes, a project wired to them (with an SMTP password it never uses), its state
    database, and the console serving both."""

    directory: Path
    url: str  # the console's
    database_url: str
    running: dict[str, RunningSandbox]
    app: Any
    env: dict[str, str] = field(default_factory=dict)

    @property
    def console(self) -> Console:
        found: Console = self.app.state.console
        return found

    @property
    def config(self) -> Path:
        return self.directory / "ticketbridge.yaml"

    def secrets(self) -> list[str]:
        """Every secret the project and the console know, each long enough to grep for."""
        return [v for v in [*self.env.values(), OPERATOR_PASSWORD, VIEWER_PASSWORD] if len(v) >= 6]

    def admin(self, platform: str, path: str, body: Any = None) -> Any:
        url = self.running[platform].url + "/_sandbox/" + path
        with httpx.Client(timeout=30) as client:
            response = client.post(url, json=body) if body is not None else client.get(url)
        response.raise_for_status()
        return response.json()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.directory),
            "TICKETBRIDGE_DATABASE_URL": self.database_url,
        }
        return subprocess.run(
            [sys.executable, "-m", "ticketbridge", *args, "--config", str(self.config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=self.directory,
        )

    def runs_of(self, sync: str) -> int:
        return len(self.console.store.list_runs(sync, limit=10_000))


def _database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'state.db'}"
        return
    url = pg.configured_url()
    if url is None:
        if pg.services_required():
            pytest.fail(f"{pg.ENV_REQUIRE}=1 but {pg.ENV_URL} is not set")
        pytest.skip(pg.SKIP_REASON)
    schema = pg.create_schema(url)
    try:
        yield pg.with_search_path(url, schema)
    finally:
        pg.drop_schema(url, schema)


def _write_project(directory: Path, urls: dict[str, str]) -> dict[str, str]:
    data = project_dict(urls, free_port())
    data["smtp"] = {
        "host": "127.0.0.1",
        "port": free_port(),
        "sender": "tb@venue.example",
        "username": "tb",
        "password": "${SMTP_PASSWORD}",
    }
    (directory / "ticketbridge.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    env = {**sandbox_env(), "SMTP_PASSWORD": SMTP_PASSWORD}
    (directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return env


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleStack]:
    """One stack per state backend for a test module: the sync runs of each test add to the
    same state, as a venue's mornings do."""
    directory = tmp_path_factory.mktemp(f"console-{request.param}")
    databases = _database(request.param, directory)
    database_url = next(databases)
    running = {p: serve_in_thread(build_sandbox(p, seed=42, records=150)) for p in PLATFORMS}
    try:
        env = _write_project(directory, {p: r.url for p, r in running.items()})
        # Its own thread: Playwright's sync API keeps an event loop running in this one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(
                _seed_state, directory / "ticketbridge.yaml", database_url, running["acme"].url
            ).result()
        settings = UiSettings(
            project_path=directory / "ticketbridge.yaml",
            database_url=database_url,
            operator_password=_secret(OPERATOR_PASSWORD),
            viewer_password=_secret(VIEWER_PASSWORD),
        )
        app = create_app(settings)
        server, thread, url = serve_asgi(app, "console", lifespan="on")
        # As `ticketbridge ui` runs: INFO lines, secrets redacted; runs keep their tail.
        logs.configure("INFO", [*env.values(), OPERATOR_PASSWORD, VIEWER_PASSWORD])
        try:
            yield ConsoleStack(directory, url, database_url, running, app, env)
        finally:
            logs.configure("WARNING")
            server.should_exit = True
            thread.join(timeout=30)
    finally:
        for r in running.values():
            r.stop()
        for _ in databases:  # drop the PostgreSQL schema
            pass


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


def _seed_state(config: Path, database_url: str, acme_url: str) -> None:
    """A first run of each sync (from the CLI's runtime, as a scheduler would) and one Tiqets
    sale through the Supplier API, so every page has something to show."""
    project = load_project(config)
    runtime = Runtime.open(project, url=database_url)
    try:
        for sync in project.syncs:
            asyncio.run(runtime.run(sync))
    finally:
        runtime.close()
    _demo_tiqets_sale(project, database_url, acme_url, None)


@pytest.fixture
def context(browser: Browser, stack: ConsoleStack) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=stack.url, viewport={"width": 1200, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    ctx.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield ctx
    ctx.close()
    # No script error and nothing the Content-Security-Policy blocked (htmx included),
    # besides the refusals the tests ask for (a 401 or 403 page is "failed to load").
    assert [e for e in errors if "status of 40" not in e] == []


def log_in(page: Page, password: str, name: str = "ada") -> None:
    page.goto("/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))


@pytest.fixture
def operator(context: BrowserContext) -> Page:
    page = context.new_page()
    log_in(page, OPERATOR_PASSWORD, "ada")
    return page


@pytest.fixture
def viewer(context: BrowserContext) -> Page:
    page = context.new_page()
    log_in(page, VIEWER_PASSWORD, "val")
    return page
