"""Serving the console under uvicorn (``ticketbridge ui``, ``ticketbridge demo --ui``)."""

from __future__ import annotations

from collections.abc import Callable

import uvicorn

from ticketbridge.sandbox import check_port_free
from ticketbridge.web.app import create_app
from ticketbridge.web.settings import OPERATOR_ENV, UiSettings


def login_lines(settings: UiSettings, made_password: str | None) -> list[str]:
    """What to print at start: the URL and, without configured passwords, how to log in."""
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{host}:{settings.port}"
    lines = [f"console: {url}"]
    if settings.one_time_token is not None:
        token = settings.one_time_token.get_secret_value()
        lines.append(f"one-time login: {url}/login/once?token={token}")
    if made_password is not None:
        lines.append(
            f"operator password for this start: {made_password} (set {OPERATOR_ENV} to choose one)"
        )
    return lines


def serve_console(settings: UiSettings, say: Callable[[str], None]) -> None:
    """Check the settings, make a login when none is configured, serve until Ctrl-C.

    Raises ConfigError (unsafe settings) and PortInUse before anything is served."""
    made = settings.ensure_login()
    check_port_free(settings.host, settings.port, "console")
    app = create_app(settings)
    for line in login_lines(settings, made):
        say(line)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    uvicorn.Server(config).run()
