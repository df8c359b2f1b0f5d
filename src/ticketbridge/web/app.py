"""``create_app(settings)``: the console as one Starlette app, with no module-level state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticketbridge.http.context import HttpContext
from ticketbridge.web.auth import guarded
from ticketbridge.web.console import Console
from ticketbridge.web.pages import actions, letters, login, overview, runs, sales, syncs
from ticketbridge.web.pages.common import refuse
from ticketbridge.web.settings import UiSettings

STATIC = Path(__file__).parent / "static"

# No inline script or style anywhere: the console's own files only, never framed.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # The one-time login link carries a token in its query: never pass it on.
    "referrer-policy": "no-referrer",
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                if not scope["path"].startswith("/static/") and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: UiSettings, http: HttpContext | None = None) -> Starlette:
    """The console for ``settings.project_path`` on the state store the CLI uses.

    Refuses (ConfigError) a non-loopback host without credentials. ``http`` lets tests mount
    in-process sandboxes; by default runs make real HTTP calls.
    """
    settings.check()
    console = Console(settings, http)

    def page(
        handler: Callable[..., Awaitable[Response]], *, operator: bool = False
    ) -> Callable[..., object]:
        return guarded(handler, refuse, operator=operator)

    routes = [
        Route("/login", login.login_form, methods=["GET"]),
        Route("/login", login.login, methods=["POST"]),
        Route("/login/once", login.login_once, methods=["GET"]),
        Route("/logout", page(login.logout), methods=["POST"]),
        Route("/logout/everyone", page(login.logout_everyone, operator=True), methods=["POST"]),
        Route("/", page(overview.overview)),
        Route("/syncs/{sync}", page(syncs.sync_page)),
        Route("/syncs/{sync}/checkpoint", page(syncs.checkpoint, operator=True), methods=["POST"]),
        Route("/syncs/{sync}/run", page(actions.run_now, operator=True), methods=["POST"]),
        Route("/syncs/{sync}/dry-run", page(actions.dry_run, operator=True), methods=["POST"]),
        Route("/syncs/{sync}/retry", page(actions.retry_all, operator=True), methods=["POST"]),
        Route("/syncs/{sync}/import", page(actions.import_form)),
        Route("/syncs/{sync}/import/chunks", page(actions.import_chunks)),
        Route("/syncs/{sync}/import", page(actions.start_import, operator=True), methods=["POST"]),
        Route("/jobs/{job}", page(actions.job_page)),
        Route("/runs/{run:int}", page(runs.run_page)),
        Route("/runs/{run:int}/progress", page(runs.progress)),
        Route("/dead-letters", page(letters.letters_page)),
        Route("/dead-letters/record", page(letters.letter_page)),
        Route("/dead-letters.csv", page(letters.letters_csv)),
        Route("/dead-letters/retry", page(letters.retry_selected, operator=True), methods=["POST"]),
        Route("/sales", page(sales.sales_page)),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            console.close()

    async def not_found(request: Request, exc: Exception) -> Response:
        return refuse(request, 404, "There is no such page.")

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=settings.secret_key.get_secret_value(),
                session_cookie="ticketbridge_console",
                max_age=int(settings.session_hours * 3600),
                same_site="strict",
                https_only=settings.secure_cookie,
            ),
        ],
        exception_handlers={404: not_found},
        lifespan=lifespan,
    )
    app.state.console = console
    return app
