"""``ticketbridge serve``'s part for Wallet callbacks: which connections have them, registering
their URL with the Wallet project, and serving them.

Registration (``POST /project/{projectId}/settings/callback``, or ``PUT`` to replace one that
exists: platforms.md 3.7) sends the base URL and the secret header; it happens every time
``serve`` starts, so a changed URL or secret takes effect with a restart. The secret travels
only in that request's body and in Wallet's callbacks; it is never logged.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import uvicorn

from ticketbridge.callbacks.app import create_app
from ticketbridge.connectors.airship_wallet.client import AirshipWalletClient
from ticketbridge.connectors.airship_wallet.config import AirshipWalletConfig
from ticketbridge.connectors.base import ConnectionConfig
from ticketbridge.engine.state.base import StateStore
from ticketbridge.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    FatalError,
    RecordRejected,
)
from ticketbridge.http import HttpContext
from ticketbridge.sandbox import PortInUse, check_port_free


def configured(connections: Mapping[str, ConnectionConfig]) -> dict[str, AirshipWalletConfig]:
    """The Wallet connections with a ``callbacks`` block, by name."""
    return {
        name: cfg
        for name, cfg in connections.items()
        if isinstance(cfg, AirshipWalletConfig) and cfg.callbacks is not None
    }


def check_servable(found: Mapping[str, AirshipWalletConfig], taken: set[tuple[str, int]]) -> None:
    """Raise ConfigError for an empty secret, two connections on one port, or a port in use;
    before anything is registered. ``taken``: host/ports other servers of ``serve`` use."""
    seen = set(taken)
    for name, cfg in found.items():
        cb = cfg.callbacks
        assert cb is not None
        field = f"connections.{name}.callbacks"
        if not cb.secret.get_secret_value():
            raise ConfigError("secret is empty", field=f"{field}.secret")
        if (cb.host, cb.port) in seen:
            raise ConfigError(f"{cb.host}:{cb.port} is already served", field=f"{field}.port")
        seen.add((cb.host, cb.port))
        try:
            check_port_free(cb.host, cb.port, f"{name} callbacks")
        except PortInUse as exc:
            raise ConfigError(str(exc), field=f"{field}.port") from None


async def register(name: str, cfg: AirshipWalletConfig, http: HttpContext) -> str:
    """Register the connection's callback URL and secret header with its Wallet project:
    ``POST``, or ``PUT`` when the project refuses the POST because one exists. Returns the
    method that worked. Raises ConnectorError (AuthError for refused credentials)."""
    cb = cfg.callbacks
    assert cb is not None
    headers = {cb.header: cb.secret.get_secret_value()}
    client = AirshipWalletClient(cfg, http)
    try:
        try:
            await client.register_callback(cb.base_url, headers, method="POST")
            return "POST"
        except AuthError:
            raise
        except (FatalError, RecordRejected):
            # [INFER] a project that has a callback may refuse a second POST (400/409):
            # PUT replaces it.
            await client.register_callback(cb.base_url, headers, method="PUT")
            return "PUT"
    finally:
        await client.aclose()


async def serve(name: str, cfg: AirshipWalletConfig, store: StateStore) -> None:
    """Serve the connection's callbacks on ``callbacks.host:port`` until cancelled (plain
    HTTP: put TLS in front for a public URL)."""
    cb = cfg.callbacks
    assert cb is not None
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(name, cfg, store),
            host=cb.host,
            port=cb.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    await server.serve()


async def start(
    found: Mapping[str, AirshipWalletConfig],
    store: StateStore,
    http: HttpContext,
    say: Callable[[str], None],
) -> list[Coroutine[Any, Any, None]]:
    """Register every connection's callbacks (where ``register`` is on), then return the
    servers to run. Raises ConnectorError naming the connection when Wallet refuses or cannot
    be reached: serving a URL Wallet does not know would receive nothing."""
    servers = []
    for name, cfg in found.items():
        cb = cfg.callbacks
        assert cb is not None
        note = "not registered (register_on_start: false)"
        if cb.register_on_start:
            try:
                await register(name, cfg, http)
            except ConnectorError as exc:
                exc.connection = name
                exc.message = (
                    f"could not register the callback URL with Wallet project "
                    f"{cfg.project_id}: {exc.message}"
                )
                exc.args = (exc._render(),)
                raise
            note = f"registered with Wallet project {cfg.project_id} as {cb.base_url}"
        say(f"Wallet callbacks of {name} on http://{cb.host}:{cb.port} ({note})")
        servers.append(serve(name, cfg, store))
    return servers
