"""TicketCo (Norway): a source of bookings and tickets, read from events and item grosses.

Registered through the ``ticketbridge.connectors`` entry point as ``CONNECTOR``.
"""

from __future__ import annotations

from typing import Any

from ticketbridge.connectors.base import Connector, SandboxSpec
from ticketbridge.connectors.ticketco.config import TicketcoConfig
from ticketbridge.connectors.ticketco.sandbox import (
    BASE,
    SANDBOX_TOKEN,
    SANDBOX_VENUES,
    create_sandbox,
)
from ticketbridge.connectors.ticketco.source import (
    BOOKINGS,
    TICKETS,
    BookingsOptions,
    TicketcoSource,
)


def sandbox_config(url: str) -> dict[str, Any]:
    """Connection settings for a sandbox served at ``url`` (its origin, no path)."""
    return {
        "platform": "ticketco",
        "base_url": url.rstrip("/") + BASE,
        "token": "${TICKETCO_TOKEN}",
    }


CONNECTOR = Connector(
    platform="ticketco",
    title="TicketCo",
    config=TicketcoConfig,
    source=TicketcoSource,
    sandbox=SandboxSpec(create_sandbox, sandbox_config, {"TICKETCO_TOKEN": SANDBOX_TOKEN}),
)

__all__ = [
    "BOOKINGS",
    "CONNECTOR",
    "SANDBOX_VENUES",
    "TICKETS",
    "BookingsOptions",
    "TicketcoConfig",
    "TicketcoSource",
    "create_sandbox",
]
